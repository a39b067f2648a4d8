//! How mounts go away: stop, drop of the guard, SIGKILL (a stale mount, then cleaned up), the
//! death of the parent, and a cleanup of everything under a run folder.

use std::process::{Command, Stdio};
use std::time::Duration;

use raftdrill_faultfs::mounts::{faultfs_mounts, is_mounted};
use raftdrill_faultfs::{CleanupScope, FaultFsProcess, cleanup_stale};

use crate::support::{BIN, ChildGuard, Mounted, launch, require_fuse, wait_until};

#[tokio::test]
async fn stop_and_drop_unmount() {
    let m = Mounted::new().await;
    let mount = m.fs.mount().to_path_buf();
    assert!(is_mounted(&mount).unwrap());
    let status = m.fs.stop(Duration::from_secs(10)).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(!is_mounted(&mount).unwrap());

    let m = Mounted::new().await;
    let mount = m.fs.mount().to_path_buf();
    drop(m);
    assert!(!is_mounted(&mount).unwrap());
}

#[tokio::test]
async fn a_sigkilled_server_leaves_a_stale_mount_that_cleanup_removes() {
    let mut m = Mounted::new().await;
    let mount = m.fs.mount().to_path_buf();
    m.fs.kill();
    let err = std::fs::metadata(&mount).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTCONN), "{err}");
    assert!(
        is_mounted(&mount).unwrap(),
        "a dead server leaves its mount"
    );
    let cleaned = cleanup_stale(CleanupScope::Stale).unwrap();
    let ours = cleaned
        .iter()
        .find(|c| c.mount_point == mount)
        .unwrap_or_else(|| panic!("{mount:?} not cleaned: {cleaned:?}"));
    assert!(ours.was_stale);
    assert!(ours.server_pid.is_some());
    assert!(!is_mounted(&mount).unwrap());
}

#[tokio::test]
async fn cleanup_of_a_stale_scope_leaves_live_mounts_alone() {
    let m = Mounted::new().await;
    let mount = m.fs.mount().to_path_buf();
    let cleaned = cleanup_stale(CleanupScope::Stale).unwrap();
    assert!(cleaned.iter().all(|c| c.mount_point != mount));
    assert!(is_mounted(&mount).unwrap());
    assert!(std::fs::metadata(&mount).is_ok());
}

#[tokio::test]
async fn cleanup_under_a_root_removes_live_mounts_there() {
    let m = Mounted::new().await;
    let mount = m.fs.mount().to_path_buf();
    let root = m.dir.path().canonicalize().unwrap();
    let cleaned = cleanup_stale(CleanupScope::AllUnder(root)).unwrap();
    assert_eq!(cleaned.len(), 1, "{cleaned:?}");
    assert_eq!(cleaned[0].mount_point, mount);
    assert!(!cleaned[0].was_stale);
    assert!(!is_mounted(&mount).unwrap());
    // The server notices its mount went away and exits on its own.
    let mut fs = m.fs;
    let exited = tokio::task::spawn_blocking(move || {
        let ok = wait_until(Duration::from_secs(20), || fs.try_wait().is_some());
        (ok, fs)
    })
    .await
    .unwrap();
    assert!(
        exited.0,
        "the server did not exit after its mount was removed"
    );
}

#[tokio::test]
async fn the_mount_goes_when_the_parent_dies() {
    require_fuse();
    let dir = tempfile::tempdir().unwrap();
    let l = launch(dir.path());
    let ready = dir.path().join("ready");
    // A shell parent that starts the server and waits; the server asks for SIGTERM when its
    // parent dies (PR_SET_PDEATHSIG) and unmounts.
    let mut parent = ChildGuard(
        Command::new("sh")
            .arg("-c")
            .arg("\"$0\" \"$@\" 2>>\"$FAULTFS_LOG\" & wait")
            .arg(BIN)
            .arg("--backing")
            .arg(&l.backing)
            .arg("--mount")
            .arg(&l.mount)
            .arg("--control")
            .arg(&l.control)
            .arg("--ready")
            .arg(&ready)
            .env("FAULTFS_LOG", dir.path().join("faultfs.log"))
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let up = tokio::task::spawn_blocking({
        let ready = ready.clone();
        move || wait_until(Duration::from_secs(20), || ready.exists())
    })
    .await
    .unwrap();
    assert!(up, "the server did not mount");
    let mount = l.mount.canonicalize().unwrap();
    let server = faultfs_mounts()
        .unwrap()
        .into_iter()
        .find(|m| m.mount_point == mount)
        .and_then(|m| m.server_pid)
        .expect("the mount names its server");
    parent.kill();
    let gone = tokio::task::spawn_blocking({
        let mount = mount.clone();
        move || wait_until(Duration::from_secs(20), || !is_mounted(&mount).unwrap())
    })
    .await
    .unwrap();
    if !gone {
        // Do not leave it behind for the next test run.
        let _ = raftdrill_faultfs::mounts::unmount_detach(&mount);
        // SAFETY: kill(2) of the server we started.
        unsafe { libc::kill(server as libc::pid_t, libc::SIGKILL) };
    }
    assert!(gone, "the mount outlived the server's parent");
}

#[tokio::test]
async fn a_server_that_cannot_mount_says_why() {
    require_fuse();
    let dir = tempfile::tempdir().unwrap();
    let mut l = launch(dir.path());
    // The backing "directory" is a file: the server must exit with an error, not hang.
    std::fs::write(&l.backing, b"not a directory").unwrap();
    l.ready_timeout = Duration::from_secs(20);
    let err = FaultFsProcess::spawn(&l).await.unwrap_err();
    assert!(err.to_string().contains("exited before mounting"), "{err}");
    let log = std::fs::read_to_string(dir.path().join("faultfs.log")).unwrap();
    assert!(log.contains("backing directory"), "{log}");
    assert!(!is_mounted(&l.mount).unwrap_or(false));
}
