//! The BLE link inside the daemon: started from the settings, or skipped
//! with a notice when nobody asked for it and BlueZ or an adapter is
//! missing (the LAN link goes on either way).

use tokio::sync::mpsc;
use tracing::info;

use super::config::BleSettings;

#[cfg(all(feature = "ble", target_os = "linux"))]
pub(crate) use yonder_link::ble::BleHandle as Handle;

/// Whether a link number belongs to the BLE driver.
pub(crate) fn is_ble(link: u64) -> bool {
    #[cfg(all(feature = "ble", target_os = "linux"))]
    {
        link & yonder_link::ble::BLE_LINK_BIT != 0
    }
    #[cfg(not(all(feature = "ble", target_os = "linux")))]
    {
        let _ = link;
        false
    }
}

/// Starts the BLE link, if wanted and possible.
#[cfg(all(feature = "ble", target_os = "linux"))]
pub(crate) async fn start(
    settings: Option<&BleSettings>,
) -> anyhow::Result<Option<(Handle, mpsc::Receiver<yonder_link::LinkEvent>)>> {
    let Some(s) = settings else { return Ok(None) };
    let config = yonder_link::ble::BleConfig {
        adapter: s.adapter.clone(),
        max_links: s.max_links,
        pacing: s.pacing,
        ignore: s.ignore.clone(),
    };
    match yonder_link::ble::BleLinks::start(config).await {
        Ok((h, rx)) => {
            info!(adapter = h.adapter(), "BLE link up");
            Ok(Some((h, rx)))
        }
        Err(e) if !s.required => {
            info!("no BLE link: {e}");
            Ok(None)
        }
        Err(e) => Err(anyhow::Error::new(e).context("starting the BLE link")),
    }
}

/// This build has no BLE link: say so if it was asked for.
#[cfg(not(all(feature = "ble", target_os = "linux")))]
pub(crate) async fn start(
    settings: Option<&BleSettings>,
) -> anyhow::Result<Option<(Handle, mpsc::Receiver<yonder_link::LinkEvent>)>> {
    match settings {
        Some(s) if s.required => {
            anyhow::bail!("this build has no Bluetooth LE link (Linux with the `ble` feature)")
        }
        Some(_) => {
            info!("no BLE link in this build");
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Stands in for the driver's handle in builds without BLE; never made.
#[cfg(not(all(feature = "ble", target_os = "linux")))]
#[derive(Debug, Clone)]
pub(crate) enum Handle {}

#[cfg(not(all(feature = "ble", target_os = "linux")))]
impl Handle {
    pub(crate) fn send(&self, _link: u64, _bytes: Vec<u8>) -> Result<(), yonder_link::LinkError> {
        match *self {}
    }

    pub(crate) async fn shutdown(&self) {
        match *self {}
    }
}
