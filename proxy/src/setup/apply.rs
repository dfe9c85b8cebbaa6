//! Carrying out `bay-proxy setup`: showing the plan's diffs, keeping the
//! originals and writing the files, or putting them back (`--undo`).

use super::files::{fingerprint, Backups, HostFs};
use super::{diff, plan, registries, Runtime, SetupArgs, SetupError};

/// Runs `bay-proxy setup`, writing what it does to `out`.
pub fn run(args: &SetupArgs, out: &mut dyn std::io::Write) -> Result<(), SetupError> {
    let host = HostFs::new(&args.root_dir);
    let backups = Backups::new(&host, &args.backup_dir, args.runtime.name());
    if args.undo {
        return undo(args, &host, &backups, out);
    }
    let registries = registries(args.runtime, &args.registries)?;
    let plan = plan(args.runtime, &registries, args.proxy, &host)?;
    let say = |out: &mut dyn std::io::Write, text: &str| {
        let _ = writeln!(out, "{text}");
    };
    if plan.changes.is_empty() {
        say(
            out,
            &format!(
                "{} already sends {} through bay-proxy at {}: nothing to change",
                args.runtime.name(),
                registries.join(", "),
                args.proxy
            ),
        );
        return Ok(());
    }
    for c in &plan.changes {
        say(out, &diff::unified(&c.path, c.old.as_deref(), Some(&c.new)));
    }
    if args.dry_run {
        say(out, "dry run: nothing was changed");
        return Ok(());
    }
    let staged: Vec<(String, Option<String>, String)> = plan
        .changes
        .iter()
        .map(|c| (c.path.clone(), c.old.clone(), c.new.clone()))
        .collect();
    backups.prepare(&staged)?;
    for c in &plan.changes {
        host.put(&c.path, Some(&c.new))?;
        say(out, &format!("wrote {}", c.path));
    }
    say(
        out,
        &format!(
            "originals kept in {}; undo with: bay-proxy setup {} --undo",
            backups.dir(),
            args.runtime.name()
        ),
    );
    for note in &plan.notes {
        say(out, &format!("note: {note}"));
    }
    Ok(())
}

fn undo(
    args: &SetupArgs,
    host: &HostFs,
    backups: &Backups,
    out: &mut dyn std::io::Write,
) -> Result<(), SetupError> {
    let record = backups.record()?.ok_or_else(|| SetupError::NothingToUndo {
        dir: backups.dir().into(),
    })?;
    let mut restore = Vec::new();
    let mut changed = Vec::new();
    for entry in &record.files {
        let now = host.read(&entry.path)?;
        if fingerprint(now.as_deref()) != entry.written {
            changed.push(entry.path.clone());
        }
        restore.push((entry.path.clone(), now, backups.original(entry)?));
    }
    if !changed.is_empty() && !args.force {
        return Err(SetupError::ChangedSince {
            paths: changed,
            dir: backups.dir().into(),
        });
    }
    for (path, now, original) in &restore {
        let _ = writeln!(
            out,
            "{}",
            diff::unified(path, now.as_deref(), original.as_deref())
        );
    }
    if args.dry_run {
        let _ = writeln!(out, "dry run: nothing was changed");
        return Ok(());
    }
    for (path, _, original) in &restore {
        host.put(path, original.as_deref())?;
        let _ = writeln!(
            out,
            "{} {path}",
            if original.is_some() {
                "restored"
            } else {
                "removed"
            }
        );
    }
    backups.clear(&record)?;
    if args.runtime == Runtime::Containerd {
        let _ = writeln!(
            out,
            "note: restart containerd if config.toml was put back (systemctl restart containerd)"
        );
    }
    Ok(())
}
