//! One way to cut a listing into pages: the store reads one row more than the page holds;
//! when that row came, the page is full and the next one starts past its last row.

/// The rows of a page read with `limit + 1`, and the position the next page starts past
/// (`None` on the last page).
pub(crate) fn page_of<T>(
    mut rows: Vec<T>,
    limit: u32,
    position: impl Fn(&T) -> i64,
) -> (Vec<T>, Option<i64>) {
    if rows.len() <= limit as usize {
        return (rows, None);
    }
    rows.truncate(limit as usize);
    let next = rows.last().map(position);
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::page_of;

    #[test]
    fn a_page_is_full_only_when_a_row_came_past_it() {
        let check = |rows: &[i64], limit, want: (&[i64], Option<i64>)| {
            let (page, next) = page_of(rows.to_vec(), limit, |r| *r);
            assert_eq!((page.as_slice(), next), want, "{rows:?} limit {limit}");
        };
        check(&[], 2, (&[], None));
        check(&[7, 8], 2, (&[7, 8], None));
        check(&[7, 8, 9], 2, (&[7, 8], Some(8)));
        check(&[9, 8, 7], 1, (&[9], Some(9)));
    }
}
