//! Where the bytes of an idle `wss://` connection go: a heap profile by a
//! counting allocator. Opens N loopback connection pairs in one process
//! (client and server halves as bench and `bench serve` build them: a
//! `WsIo` over a rustls connection taken from tokio-rustls after the
//! handshake), exchanges one small frame each way so every buffer has been
//! used, then measures the live heap with both halves held, after dropping
//! the client halves, and after dropping the server halves. The same for
//! plain TCP gives the baseline; the difference is what TLS costs per side.
//! Kernel socket buffers are not heap and not counted (RSS figures in
//! scripts/bench-tls include what user space touches only, too).
//!
//! Run: cargo run --release --example tls_memory [-- N]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use wire::ws::{client_frame, server_frame, Counted, Fill, OpCode, Role, Transport, WsIo};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

struct Tls {
    client: tokio_rustls::TlsConnector,
    server: tokio_rustls::TlsAcceptor,
}

fn tls(resume: bool) -> Tls {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let mut cc = rustls::ClientConfig::builder_with_provider(wire::ws::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    if !resume {
        cc.resumption = rustls::client::Resumption::disabled();
    }
    let mut sc = rustls::ServerConfig::builder_with_provider(wire::ws::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    sc.ticketer = rustls::crypto::ring::Ticketer::new().unwrap();
    Tls {
        client: tokio_rustls::TlsConnector::from(Arc::new(cc)),
        server: tokio_rustls::TlsAcceptor::from(Arc::new(sc)),
    }
}

async fn pair(l: &TcpListener, tls: Option<&Tls>) -> (WsIo, WsIo) {
    let (c, s) = tokio::join!(TcpStream::connect(l.local_addr().unwrap()), l.accept());
    let (c, s) = (c.unwrap(), s.unwrap().0);
    let (ct, st): (Transport, Transport) = match tls {
        None => (c.into(), s.into()),
        Some(t) => {
            let name = ServerName::try_from("localhost").unwrap();
            let (c, s) = tokio::join!(
                t.client.connect(name, Counted(c)),
                t.server.accept(Counted(s))
            );
            (c.unwrap().into(), s.unwrap().into())
        }
    };
    let mut c = WsIo::new(ct, Role::Client, 1 << 20, 8192, BytesMut::new());
    let mut s = WsIo::new(st, Role::Server, 1 << 20, 4096, BytesMut::new());
    // One frame each way, so reads and writes have happened on both.
    c.queue(client_frame(
        OpCode::Text,
        b"{\"type\":\"join\",\"room\":\"r1\"}",
    ));
    c.flush().await.unwrap();
    read_one(&mut s).await;
    s.queue(server_frame(
        OpCode::Text,
        b"{\"type\":\"joined\",\"room\":\"r1\",\"seq\":0}",
    ));
    s.flush().await.unwrap();
    read_one(&mut c).await;
    (c, s)
}

async fn read_one(io: &mut WsIo) {
    loop {
        if io.decode().unwrap().is_some() {
            // Leave it idle as a connection task would: buffer released.
            while io.fill().unwrap() == Fill::Data {}
            io.release_if_empty();
            return;
        }
        io.stream().readable().await.unwrap();
        io.fill().unwrap();
    }
}

async fn measure(label: &str, n: usize, tls: Option<&Tls>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let before = live();
    let mut clients = Vec::with_capacity(n);
    let mut servers = Vec::with_capacity(n);
    let vecs = live() - before;
    for _ in 0..n {
        let (c, s) = pair(&l, tls).await;
        clients.push(c);
        servers.push(s);
    }
    let both = live() - before - vecs;
    drop(clients);
    let after_clients = live() - before;
    drop(servers);
    let after_servers = live() - before;
    let client = (both + vecs - after_clients) as f64 / n as f64;
    let server = (after_clients - after_servers) as f64 / n as f64;
    println!(
        "{label:<28} client {:>7.0} B ({:.2} KiB)   server {:>7.0} B ({:.2} KiB)   per pair {:.2} KiB",
        client,
        client / 1024.0,
        server,
        server / 1024.0,
        both as f64 / n as f64 / 1024.0
    );
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "heap per idle connection, {n} pairs (inline: WsIo {} B, rustls::ClientConnection {} B, ServerConnection {} B)",
        std::mem::size_of::<WsIo>(),
        std::mem::size_of::<rustls::ClientConnection>(),
        std::mem::size_of::<rustls::ServerConnection>()
    );
    rt.block_on(async {
        measure("plain ws://", n, None).await;
        let full = tls(false);
        measure("wss:// (full handshakes)", n, Some(&full)).await;
        let resumed = tls(true);
        measure("wss:// (resumption on)", n, Some(&resumed)).await;
    });
}
