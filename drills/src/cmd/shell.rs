//! `raftdrill completions` and `raftdrill man`: generated from the same clap definition that
//! parses the command line, so they cannot drift from it.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;

/// Writes `shell`'s completion script for raftdrill to `out`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) {
    clap_complete::generate(shell, &mut Cli::command(), "raftdrill", out);
}

/// Writes raftdrill's man page (roff) to `out`.
pub fn man(out: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}

/// Writes `bytes` to stdout; a reader that closed early (`| head`) is not an error.
pub fn print(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes one man page per command that a user runs (raftdrill.1, raftdrill-run.1, ...) to
/// `dir`, made if missing; returns the files' names, sorted.
pub fn man_pages(dir: &Path) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(Cli::command(), dir)?;
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("raftdrill") && n.ends_with(".1"))
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shell's script generates and names raftdrill's subcommands, and bash's, zsh's and
    /// fish's a word flag's values.
    #[test]
    fn every_shell_gets_a_completion_script() {
        use clap::ValueEnum;
        for shell in clap_complete::Shell::value_variants() {
            let mut out = Vec::new();
            completions(*shell, &mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("raftdrill"), "{shell}: {text}");
            assert!(text.contains("capacity"), "{shell} lacks a subcommand");
            // Elvish's and PowerShell's scripts complete flags, not their values.
            let values = !matches!(
                shell,
                clap_complete::Shell::Elvish | clap_complete::Shell::PowerShell
            );
            assert!(
                !values || text.contains("zipfian"),
                "{shell} lacks a flag's words"
            );
        }
    }

    /// The man page is roff for raftdrill, and the folder form writes a page for each command a
    /// user runs and none for raftdrill's own hidden ones.
    #[test]
    fn man_pages_cover_the_commands_a_user_runs() {
        let mut out = Vec::new();
        man(&mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(
            page.starts_with(".ie") || page.contains(".TH raftdrill"),
            "{page}"
        );
        assert!(page.contains("capacity"));
        let dir = tempfile::tempdir().unwrap();
        let names = man_pages(dir.path()).unwrap();
        for want in [
            "raftdrill.1",
            "raftdrill-run.1",
            "raftdrill-compare.1",
            "raftdrill-man.1",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
        assert!(
            !names
                .iter()
                .any(|n| n.contains("node") || n.contains("faultfs"))
        );
        let run = std::fs::read_to_string(dir.path().join("raftdrill-run.1")).unwrap();
        assert!(run.contains("seed"), "the run page lists its flags");
    }
}
