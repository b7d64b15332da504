//! `dn-hostile`: a hostile peer for tests (see `dn_tests::hostile`). Dials one node, runs one
//! attack for a bounded time, prints a JSON report and exits.
//!
//! ```text
//! dn-hostile --target 10.77.0.1:7300 --attack no-read --seconds 10 --room ops [--room more]
//! ```

#[cfg(target_os = "linux")]
fn main() -> anyhow::Result<()> {
    linux::main()
}

/// The hostile-peer harness runs on Linux only (like the whole test crate).
#[cfg(not(target_os = "linux"))]
fn main() -> std::process::ExitCode {
    eprintln!(
        "dn-hostile: the hostile-peer harness runs on Linux only (like the whole test crate)"
    );
    std::process::ExitCode::from(2)
}

#[cfg(target_os = "linux")]
mod linux {
    use std::time::Duration;

    use anyhow::{bail, Context, Result};
    use dn_tests::hostile::{run, Plan, ATTACKS};

    pub(crate) fn main() -> Result<()> {
        let mut target = None;
        let mut attack = None;
        let mut seconds = 10u64;
        let mut rooms = Vec::new();
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = || args.next().with_context(|| format!("{a} needs a value"));
            match a.as_str() {
                "--target" => target = Some(value()?.parse().context("--target: not ADDR:PORT")?),
                "--attack" => attack = Some(value()?),
                "--seconds" => seconds = value()?.parse().context("--seconds: not a number")?,
                "--room" => rooms.push(value()?),
                "--help" | "-h" => {
                    println!(
                        "dn-hostile --target ADDR:PORT --attack NAME [--seconds N] [--room R]...\n\
                         attacks: {}",
                        ATTACKS.join(", ")
                    );
                    return Ok(());
                }
                other => bail!("unknown argument {other:?} (try --help)"),
            }
        }
        let (Some(target), Some(attack)) = (target, attack) else {
            bail!("--target and --attack are required (try --help)");
        };
        if seconds > 600 {
            bail!("--seconds: at most 600");
        }
        let plan = Plan {
            target,
            rooms: if rooms.is_empty() {
                vec!["ops".into()]
            } else {
                rooms
            },
            attack,
            duration: Duration::from_secs(seconds),
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let report = rt.block_on(run(&plan))?;
        println!("{}", serde_json::to_string(&report)?);
        Ok(())
    }
}
