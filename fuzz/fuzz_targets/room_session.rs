//! Room sessions, host and joined member, fed any datagrams and ticks: no
//! panic, and a member is never thrown out of the room, nor the
//! room's membership changed, by bytes it cannot authenticate.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use yonder_core::room::session::TICK_MS;
use yonder_core::room::{RoomCard, RoomMeta, RoomOutput, RoomSession};

const T0: u64 = 1_700_000_000_000;

/// A host and one joined member, exchanging everything until quiet.
fn pair(rng: &mut ChaCha8Rng) -> Option<(RoomSession, RoomSession, u64)> {
    let mut host = RoomSession::host(RoomMeta::open("fuzz"), "h", true, T0, rng).ok()?;
    let mut now = T0 + TICK_MS;
    host.handle_tick(now, rng);
    let card = std::iter::from_fn(|| host.poll_output()).find_map(|o| match o {
        RoomOutput::Announce(c) => RoomCard::decode(&c).ok(),
        RoomOutput::Send { .. } => None,
    })?;
    let mut member = RoomSession::join(&card, "m", rng).ok()?;
    for _ in 0..20 {
        now += TICK_MS;
        host.handle_tick(now, rng);
        member.handle_tick(now, rng);
        for _ in 0..20 {
            let mut moved = false;
            while let Some(RoomOutput::Send { class, payload }) = host.poll_output() {
                member.handle_datagram(class, &payload, now, rng);
                moved = true;
            }
            while let Some(RoomOutput::Send { class, payload }) = member.poll_output() {
                host.handle_datagram(class, &payload, now, rng);
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }
    member.is_member().then_some((host, member, now))
}

fuzz_target!(|data: &[u8]| {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let Some((mut host, mut member, mut now)) = pair(&mut rng) else { return };
    // Each chunk: a class byte, a kind-ish byte, and the rest as a datagram.
    for chunk in data.chunks(97) {
        let Some((&class, rest)) = chunk.split_first() else { continue };
        let class = class % 4;
        host.handle_datagram(class, rest, now, &mut rng);
        member.handle_datagram(class, rest, now, &mut rng);
        now += u64::from(rest.first().copied().unwrap_or(0)) * 10;
        host.handle_tick(now, &mut rng);
        member.handle_tick(now, &mut rng);
        while host.poll_output().is_some() {}
        while member.poll_output().is_some() {}
    }
    assert!(member.is_member() && !member.is_gone());
    assert!(!host.is_gone());
    // Nobody joined, left or was removed on forged bytes.
    assert_eq!(host.state().map(|s| s.members().count()), Some(2));
    assert_eq!(member.state().map(|s| s.members().count()), Some(2));
});
