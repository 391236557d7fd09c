//! Files that hold secrets: the SQLite store (it keeps the server keys, which seal sessions and
//! sign tokens), config files with keys or passwords, the demo's env file.
//!
//! Such files are created `0600` in directories created `0700`, and an existing one that group
//! or others may open is refused, with an error naming the file and the fix, the way `ssh`
//! refuses a readable private key. On platforms without Unix modes nothing is checked.

use std::io;
use std::path::Path;

/// Creates `dir` and any missing parents, each `0700`. Directories that exist are left as
/// they are.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Options that create a file `0600` (when the call creates it at all).
pub fn private_options() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut o = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// Creates `file` empty and `0600` if it does not exist; an existing file is not touched.
pub fn create_private_file(file: &Path) -> io::Result<()> {
    match private_options().write(true).create_new(true).open(file) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// `Err` with the reason when `file` exists and group or others have any access to it.
/// `holds` says what the file holds, for the message (e.g. "the server keys").
pub fn check_private(file: &Path, holds: &str) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(file) else {
            return Ok(());
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} is open to group or others (mode {mode:04o}) and holds {holds}; \
                 make it the service user's alone: chmod 600 {}",
                file.display(),
                file.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (file, holds);
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_private_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        create_private_dir(&sub).unwrap();
        assert_eq!(mode(&sub), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        let f = sub.join("f");
        create_private_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        assert_eq!(check_private(&f, "x"), Ok(()));
        // An existing file keeps its content and mode.
        std::fs::write(&f, "kept").unwrap();
        create_private_file(&f).unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "kept");

        for open in [0o640, 0o604, 0o620, 0o644] {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(open)).unwrap();
            let e = check_private(&f, "the keys").unwrap_err();
            assert!(e.contains(&f.display().to_string()), "{e}");
            assert!(e.contains(&format!("{open:04o}")), "{e}");
            assert!(e.contains("chmod 600"), "{e}");
        }
        // What does not exist is not refused (it will be created private).
        assert_eq!(check_private(&sub.join("none"), "x"), Ok(()));
    }
}
