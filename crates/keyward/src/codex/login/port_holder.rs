//! Who holds a loopback port: the process listening on it, read from `/proc` (the socket's inode
//! in `/proc/net/tcp*`, then the process whose descriptors include that socket). Processes of other
//! users are only visible to root; then the answer is just "another program".

use procfs::net::TcpState;
use procfs::process::FDTarget;

/// "process 1234 (codex)", or a plain description when the holder cannot be seen.
pub(crate) fn describe(port: u16) -> String {
    match holder(port) {
        Some((pid, name)) => format!("held by process {pid} ({name})"),
        None => "held by another program".into(),
    }
}

fn holder(port: u16) -> Option<(i32, String)> {
    let sockets = procfs::net::tcp()
        .into_iter()
        .chain(procfs::net::tcp6())
        .flatten();
    let inode = sockets
        .filter(|s| s.state == TcpState::Listen && s.local_address.port() == port)
        .map(|s| s.inode)
        .next()?;
    procfs::process::all_processes()
        .ok()?
        .flatten()
        .find_map(|process| {
            let holds = process
                .fd()
                .ok()?
                .flatten()
                .any(|fd| matches!(fd.target, FDTarget::Socket(i) if i == inode));
            holds.then(|| {
                let name = process
                    .stat()
                    .map(|s| s.comm)
                    .unwrap_or_else(|_| "?".into());
                (process.pid, name)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port this process listens on is named as held by this process.
    #[test]
    fn names_the_listening_process() -> std::io::Result<()> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        assert_eq!(
            holder(port).map(|(pid, _)| pid),
            Some(std::process::id() as i32)
        );
        drop(listener);
        assert_eq!(describe(port), "held by another program");
        Ok(())
    }
}
