//! The LAN driver on real sockets: static peers, a hub, reconnection,
//! multicast discovery, impairment, duplicate links and misbehaving peers.
//! Every wait is bounded by a timeout; nothing asserts how fast it went.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use rand_core::{OsRng, RngCore as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc::Receiver;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::time::{sleep, timeout};
use yonder_link::{
    Impairment, LanConfig, LanHandle, LanLinks, LinkError, LinkEvent, MAX_FRAME, Remote,
};

/// Generous: these are deadlines against hangs, not speed requirements.
const T: Duration = Duration::from_secs(30);

fn localhost() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// Static peers only, on loopback: no beacons, so tests running in
/// parallel cannot find each other.
fn quiet() -> LanConfig {
    LanConfig { interfaces: Some(vec![]), listen: localhost(), ..LanConfig::default() }
}

async fn start(config: LanConfig) -> (LanHandle, Receiver<LinkEvent>) {
    LanLinks::start(config).await.unwrap()
}

async fn next(rx: &mut Receiver<LinkEvent>) -> LinkEvent {
    timeout(T, rx.recv()).await.expect("timed out waiting for an event").expect("channel closed")
}

async fn expect_up(rx: &mut Receiver<LinkEvent>) -> (u64, SocketAddr) {
    match next(rx).await {
        LinkEvent::Up { link, remote: Remote::Ip(remote), mtu } => {
            assert_eq!(mtu, MAX_FRAME);
            (link, remote)
        }
        other => panic!("expected Up, got {other:?}"),
    }
}

async fn expect_frame(rx: &mut Receiver<LinkEvent>) -> (u64, Vec<u8>) {
    match next(rx).await {
        LinkEvent::Frame { link, bytes } => (link, bytes),
        other => panic!("expected a frame, got {other:?}"),
    }
}

async fn expect_down(rx: &mut Receiver<LinkEvent>, want: u64) {
    match next(rx).await {
        LinkEvent::Down { link } => assert_eq!(link, want),
        other => panic!("expected Down of {want}, got {other:?}"),
    }
}

/// Frame `i` of a test stream: its index, then bytes that depend on it,
/// 4 to ~1,500 bytes long.
fn payload(i: u32) -> Vec<u8> {
    let len = 4 + (i as usize * 37) % 1500;
    let mut v = i.to_be_bytes().to_vec();
    v.extend((4..len).map(|k| (k as u32).wrapping_mul(31).wrapping_add(i) as u8));
    v
}

fn index_of(frame: &[u8]) -> u32 {
    u32::from_be_bytes(frame[..4].try_into().unwrap())
}

/// Asserts nothing more arrives for a while (no second Up, no Down).
async fn assert_quiet(rx: &mut Receiver<LinkEvent>, for_: Duration) {
    sleep(for_).await;
    match rx.try_recv() {
        Err(TryRecvError::Empty) => {}
        other => panic!("unexpected event: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_peers_carry_frames_both_ways_in_order() {
    let (b, mut b_rx) = start(quiet()).await;
    let (a, mut a_rx) = start(LanConfig { static_peers: vec![b.local_addr()], ..quiet() }).await;
    let (a_link, a_remote) = expect_up(&mut a_rx).await;
    let (b_link, _) = expect_up(&mut b_rx).await;
    assert_eq!(a_remote, b.local_addr());

    const N: u32 = 1000;
    let receive = |mut rx: Receiver<LinkEvent>, link: u64| {
        tokio::spawn(async move {
            for i in 0..N {
                let (l, bytes) = expect_frame(&mut rx).await;
                assert_eq!(l, link);
                assert_eq!(bytes, payload(i), "frame {i}");
            }
            let (_, big) = expect_frame(&mut rx).await;
            assert_eq!(big, vec![0xa5; MAX_FRAME]);
            rx
        })
    };
    let at_b = receive(b_rx, b_link);
    let at_a = receive(a_rx, a_link);
    for i in 0..N {
        a.send(a_link, payload(i)).unwrap();
        b.send(b_link, payload(i)).unwrap();
    }
    a.send(a_link, vec![0xa5; MAX_FRAME]).unwrap();
    b.send(b_link, vec![0xa5; MAX_FRAME]).unwrap();
    let mut b_rx = timeout(T, at_b).await.unwrap().unwrap();
    let mut a_rx = timeout(T, at_a).await.unwrap().unwrap();

    for (h, l) in [(&a, a_link), (&b, b_link)] {
        let s = h.stats(l).unwrap();
        assert_eq!((s.dropped, s.frames_in), (0, u64::from(N) + 1));
        // The writer counts a batch once its write returns, which can be
        // after the other side has read it.
        timeout(T, async {
            while h.stats(l).unwrap().frames_out != u64::from(N) + 1 {
                sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
    }
    // Exactly one Up on each side, and nothing else happened.
    assert_quiet(&mut a_rx, Duration::from_secs(1)).await;
    assert_quiet(&mut b_rx, Duration::ZERO).await;

    // Local mistakes are refused before anything is queued.
    assert!(matches!(a.send(a_link, vec![]), Err(LinkError::EmptyFrame)));
    assert!(matches!(a.send(a_link, vec![0; MAX_FRAME + 1]), Err(LinkError::FrameTooLarge { .. })));
    assert!(matches!(a.send(999, vec![1]), Err(LinkError::NoSuchLink(999))));

    a.shutdown().await;
    expect_down(&mut a_rx, a_link).await;
    expect_down(&mut b_rx, b_link).await;
    assert!(matches!(a.send(a_link, vec![1]), Err(LinkError::Shutdown)));
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_keeps_one_link_per_neighbour() {
    let (b, mut b_rx) = start(quiet()).await;
    let (a, mut a_rx) = start(LanConfig { static_peers: vec![b.local_addr()], ..quiet() }).await;
    let (c, mut c_rx) = start(LanConfig { static_peers: vec![b.local_addr()], ..quiet() }).await;
    let (a_link, _) = expect_up(&mut a_rx).await;
    let (c_link, _) = expect_up(&mut c_rx).await;
    let (b1, r1) = expect_up(&mut b_rx).await;
    let (b2, r2) = expect_up(&mut b_rx).await;
    assert_ne!(b1, b2);
    assert_ne!(r1, r2);
    assert_eq!(b.links(), {
        let mut v = vec![b1, b2];
        v.sort_unstable();
        v
    });

    a.send(a_link, b"from a".to_vec()).unwrap();
    c.send(c_link, b"from c".to_vec()).unwrap();
    let mut who = HashMap::new();
    for _ in 0..2 {
        let (link, bytes) = expect_frame(&mut b_rx).await;
        who.insert(bytes, link);
    }
    let b_to_a = who[&b"from a".to_vec()];
    let b_to_c = who[&b"from c".to_vec()];
    assert_ne!(b_to_a, b_to_c);
    b.send(b_to_a, b"to a".to_vec()).unwrap();
    b.send(b_to_c, b"to c".to_vec()).unwrap();
    assert_eq!(expect_frame(&mut a_rx).await, (a_link, b"to a".to_vec()));
    assert_eq!(expect_frame(&mut c_rx).await, (c_link, b"to c".to_vec()));

    for h in [&a, &b, &c] {
        h.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_static_peer_is_redialled() {
    let (b, mut b_rx) = start(quiet()).await;
    let b_addr = b.local_addr();
    let (a, mut a_rx) = start(LanConfig { static_peers: vec![b_addr], ..quiet() }).await;
    let (first, _) = expect_up(&mut a_rx).await;
    let (b_link, _) = expect_up(&mut b_rx).await;

    b.shutdown().await;
    expect_down(&mut b_rx, b_link).await;
    expect_down(&mut a_rx, first).await;

    // A new instance on the same port: A's backoff finds it.
    let (b2, mut b2_rx) = start(LanConfig { listen: b_addr, ..quiet() }).await;
    assert_eq!(b2.local_addr(), b_addr);
    let (second, remote) = expect_up(&mut a_rx).await;
    assert_ne!(first, second);
    assert_eq!(remote, b_addr);
    let (b2_link, _) = expect_up(&mut b2_rx).await;
    a.send(second, b"again".to_vec()).unwrap();
    assert_eq!(expect_frame(&mut b2_rx).await, (b2_link, b"again".to_vec()));

    a.shutdown().await;
    b2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multicast_beacons_form_exactly_one_link() {
    // A group and port of our own, so that no other run or test interferes.
    let r = OsRng.next_u32();
    let group = Ipv4Addr::new(239, 255, (r >> 8) as u8, r as u8);
    let port = 20_000 + (r >> 16) as u16 % 40_000;
    let config = || LanConfig {
        group,
        port,
        interfaces: None,
        beacon_interval: Duration::from_millis(200),
        ..LanConfig::default()
    };
    let (a, mut a_rx) = start(config()).await;
    let (b, mut b_rx) = start(config()).await;
    let (a_link, _) = expect_up(&mut a_rx).await;
    let (b_link, _) = expect_up(&mut b_rx).await;

    a.send(a_link, b"hello b".to_vec()).unwrap();
    b.send(b_link, b"hello a".to_vec()).unwrap();
    assert_eq!(expect_frame(&mut b_rx).await, (b_link, b"hello b".to_vec()));
    assert_eq!(expect_frame(&mut a_rx).await, (a_link, b"hello a".to_vec()));

    // Ten more beacon rounds each way change nothing: still one link.
    assert_quiet(&mut a_rx, Duration::from_secs(2)).await;
    assert_quiet(&mut b_rx, Duration::ZERO).await;
    assert_eq!((a.links(), b.links()), (vec![a_link], vec![b_link]));

    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impaired_link_loses_about_the_configured_share_and_corrupts_nothing() {
    let (b, mut b_rx) = start(quiet()).await;
    let lossy = Impairment { loss: 0.3, ..Impairment::default() };
    let (a, mut a_rx) = start(LanConfig {
        static_peers: vec![b.local_addr()],
        impairment: Some((lossy, 7)),
        ..quiet()
    })
    .await;
    let (a_link, _) = expect_up(&mut a_rx).await;
    let (b_link, _) = expect_up(&mut b_rx).await;

    const N: u32 = 1000;
    const END: u32 = u32::MAX;
    for i in 0..N {
        a.send(a_link, payload(i)).unwrap();
    }
    // The end marker is as lossy as the rest: repeat it until it lands. TCP
    // keeps order, so every data frame that survived is in before it.
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<()>();
    let collect = tokio::spawn(async move {
        let mut got = Vec::new();
        loop {
            let (link, bytes) = expect_frame(&mut b_rx).await;
            assert_eq!(link, b_link);
            let i = index_of(&bytes);
            if i == END {
                let _ = done_tx.send(());
                return got;
            }
            assert_eq!(bytes, payload(i), "frame {i} corrupted");
            got.push(i);
        }
    });
    timeout(T, async {
        while done_rx.try_recv().is_err() {
            a.send(a_link, END.to_be_bytes().to_vec()).unwrap();
            sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    let got = timeout(T, collect).await.unwrap().unwrap();
    assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order or duplicated");
    let delivered = got.len() as f64 / f64::from(N);
    assert!((0.6..=0.8).contains(&delivered), "delivered {delivered}");
    assert!(a.stats(a_link).unwrap().impaired_lost >= u64::from(N) - got.len() as u64);

    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_crossed_dials_settle_on_one_link() {
    // Two free ports, then A dials B twice over and B dials A.
    let (a0, _) = start(quiet()).await;
    let (b0, _) = start(quiet()).await;
    let (a_addr, b_addr) = (a0.local_addr(), b0.local_addr());
    a0.shutdown().await;
    b0.shutdown().await;
    let (a, _a_rx) =
        start(LanConfig { listen: a_addr, static_peers: vec![b_addr, b_addr], ..quiet() }).await;
    let (b, _b_rx) =
        start(LanConfig { listen: b_addr, static_peers: vec![a_addr], ..quiet() }).await;

    timeout(T, async {
        while a.links().len() != 1 || b.links().len() != 1 {
            sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("never settled on one link");
    // Several redial rounds later, still one link each side.
    sleep(Duration::from_secs(3)).await;
    assert_eq!((a.links().len(), b.links().len()), (1, 1));
    let (al, bl) = (a.links()[0], b.links()[0]);
    a.send(al, b"one".to_vec()).unwrap();
    b.send(bl, b"two".to_vec()).unwrap();

    a.shutdown().await;
    b.shutdown().await;
}

async fn raw_hello(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"YNDRLNK1\x01\x02\x03\x04\x05\x06\x07\x08").await.unwrap();
    let mut hello = [0u8; 16];
    timeout(T, s.read_exact(&mut hello)).await.unwrap().unwrap();
    assert_eq!(&hello[..8], b"YNDRLNK1");
    s
}

/// Reads until the other side closes; returns what it sent.
async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let _ = timeout(T, s.read_to_end(&mut all)).await.expect("peer never closed");
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_declaring_an_oversized_frame_is_cut_off() {
    let (b, mut b_rx) = start(quiet()).await;
    let mut s = raw_hello(b.local_addr()).await;
    let (link, _) = expect_up(&mut b_rx).await;
    s.write_all(&[0, 0, 0, 3, b'o', b'k', b'!']).await.unwrap();
    assert_eq!(expect_frame(&mut b_rx).await, (link, b"ok!".to_vec()));
    s.write_all(&(MAX_FRAME as u32 + 1).to_be_bytes()).await.unwrap();
    expect_down(&mut b_rx, link).await;
    read_to_close(&mut s).await;

    // A bad hello never becomes a link.
    let mut s = TcpStream::connect(b.local_addr()).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let got = read_to_close(&mut s).await;
    assert_eq!(&got[..8], b"YNDRLNK1");
    assert_quiet(&mut b_rx, Duration::from_millis(200)).await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalives_flow_and_a_silent_peer_times_out() {
    let (b, mut b_rx) = start(LanConfig {
        keepalive_interval: Duration::from_millis(200),
        read_timeout: Duration::from_secs(1),
        ..quiet()
    })
    .await;
    let mut s = raw_hello(b.local_addr()).await;
    let (link, _) = expect_up(&mut b_rx).await;
    // We never write again: B keeps the link alive, then gives up on us.
    expect_down(&mut b_rx, link).await;
    let got = read_to_close(&mut s).await;
    assert!(got.len() >= 4 && got.len() % 4 == 0 && got.iter().all(|&x| x == 0), "{got:?}");
    b.shutdown().await;
}
