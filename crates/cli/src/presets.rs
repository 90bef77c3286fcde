//! The programmes of the systems the seeds describe, shipped inside the binary from
//! `presets/`: `tessera presets` lists them, `tessera presets NAME` prints one to start
//! from, and `serve --preset NAME` runs one.

pub(crate) struct Preset {
    pub name: &'static str,
    pub summary: &'static str,
    pub source: &'static str,
}

pub(crate) const PRESETS: &[Preset] = &[
    Preset {
        name: "jd-plus",
        summary: "JD PLUS (149 yuan a year, 30-day trial, free shipping, member prices, iQIYI joint card) and 京享值 tiers over 12 months",
        source: include_str!("../../../presets/jd-plus.toml"),
    },
    Preset {
        name: "taobao-88vip",
        summary: "Taobao 88VIP (88 yuan with 淘气值 >= 1000, else 888), 5% off, partner bundles, 5 free return pickups a month",
        source: include_str!("../../../presets/taobao-88vip.toml"),
    },
    Preset {
        name: "costco",
        summary: "Costco Gold Star $65 and Executive $130 a year, members-only buying, full refund any time, back-dated renewal within 2 months",
        source: include_str!("../../../presets/costco.toml"),
    },
    Preset {
        name: "amazon-prime",
        summary: "Amazon Prime $139 a year or $14.99 a month, 30-day trial, free shipping, video as a feature",
        source: include_str!("../../../presets/amazon-prime.toml"),
    },
    Preset {
        name: "sephora",
        summary: "Sephora Beauty Insider: VIB at $350 and Rouge at $1,000 a calendar year, kept the next year; points expire after 18 months inactive",
        source: include_str!("../../../presets/sephora.toml"),
    },
    Preset {
        name: "starbucks",
        summary: "Starbucks Rewards: Gold at 500 stars in 12 months, Reserve at 2,500; 1 / 1.2 / 1.7 stars per $; rewards at 25 to 400 stars",
        source: include_str!("../../../presets/starbucks.toml"),
    },
    Preset {
        name: "yunji",
        summary: "Yunji 398 yuan paid entry, members' discount, a quarter of the fee to the referrer",
        source: include_str!("../../../presets/yunji.toml"),
    },
];

pub(crate) fn find(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// `tessera presets [NAME]`: the list, one line each, or one preset's file.
pub(crate) fn run(name: Option<&str>) -> anyhow::Result<()> {
    match name {
        None => {
            let width = PRESETS.iter().map(|p| p.name.len()).max().unwrap_or(0);
            for p in PRESETS {
                println!("{:width$}  {}", p.name, p.summary);
            }
            Ok(())
        }
        Some(name) => {
            let preset = find(name).ok_or_else(|| unknown(name))?;
            print!("{}", preset.source);
            Ok(())
        }
    }
}

pub(crate) fn unknown(name: &str) -> anyhow::Error {
    let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
    anyhow::anyhow!("no preset `{name}`: the presets are {}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::PRESETS;

    #[test]
    fn every_preset_is_a_valid_programme() {
        for p in PRESETS {
            if let Err(issues) = tessera_domain::Programme::parse(p.source) {
                panic!("preset {}: {issues:?}", p.name);
            }
        }
    }

    #[test]
    fn every_file_of_presets_is_shipped() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../presets");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".toml"))
            .map(|n| n.trim_end_matches(".toml").to_owned())
            .collect();
        files.sort();
        let mut shipped: Vec<String> = PRESETS.iter().map(|p| p.name.to_owned()).collect();
        shipped.sort();
        assert_eq!(files, shipped);
    }
}
