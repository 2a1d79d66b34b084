//! The processes behind a server bench started, from `/proc`: the children
//! of a supervisor (`bench serve --processes N`) and each child's index,
//! which the supervisor passes in the `BENCH_SERVER_PROCESS` environment
//! variable. Linux only; elsewhere (or when `/proc` hides them) there are
//! none, and bench samples and kills only what it started itself.

/// The supervisor's environment variable naming a child's index.
const PROCESS_ENV: &[u8] = b"BENCH_SERVER_PROCESS=";

/// Direct children of `pid`, from every thread's `children` list (a child
/// is listed under the thread that forked it).
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let Ok(list) = std::fs::read_to_string(task.path().join("children")) else {
            continue;
        };
        out.extend(
            list.split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The `BENCH_SERVER_PROCESS` index of `pid`, if it has one. `None` also
/// for a child that has not exec'd yet (it still shows its parent's
/// environment): callers ask again later.
pub fn index_of(pid: u32) -> Option<u32> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    env.split(|b| *b == 0)
        .find_map(|var| var.strip_prefix(PROCESS_ENV))
        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
}

/// True when `pid` runs redis-server (a server's own Redis, e.g. one a
/// Node peer starts as its child: sampled apart, not as the server).
pub fn is_redis(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|c| c.trim_end().starts_with("redis-server"))
}

/// The child of `supervisor` whose index is `index`.
pub fn child_with_index(supervisor: u32, index: u32) -> Option<u32> {
    children(supervisor)
        .into_iter()
        .find(|c| index_of(*c) == Some(index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_child_and_its_index() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env("BENCH_SERVER_PROCESS", "3")
            .spawn()
            .unwrap();
        let me = std::process::id();
        let found = children(me).contains(&child.id());
        // Until the child has exec'd, /proc shows the parent's environment.
        let mut index = None;
        for _ in 0..500 {
            index = index_of(child.id());
            if index.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let by_index = child_with_index(me, 3);
        let _ = child.kill();
        let _ = child.wait();
        assert!(found, "{:?}", children(me));
        assert_eq!(index, Some(3));
        assert_eq!(by_index, Some(child.id()));
        assert_eq!(index_of(me), None);
    }
}
