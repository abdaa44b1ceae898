//! The load: a fixed number of client tasks, each sending one request after another to a random
//! keyward process, in a random dialect and shape.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;
use tokio::sync::watch;

use crate::clients::{request, Shape};
use crate::soak::Soak;
use crate::timeline::{now_ms, Failure};
use crate::watch::nap;

/// Bounds a request that hangs; never a speed expectation. Longer than any stop, lock wait and
/// slow token endpoint together.
pub(crate) const CLIENT_PATIENCE: Duration = Duration::from_secs(180);

pub(crate) async fn run_client(soak: Arc<Soak>, mut rng: StdRng, mut stop: watch::Receiver<bool>) {
    let http = match reqwest::Client::builder().timeout(CLIENT_PATIENCE).build() {
        Ok(http) => http,
        Err(e) => {
            soak.problem(format!("cannot build an HTTP client: {e}"));
            return;
        }
    };
    while !*stop.borrow() {
        let Some((slot, instance, url)) = soak.fleet.pick(&mut rng) else {
            nap(&mut stop, Duration::from_millis(100)).await;
            continue;
        };
        let shape = Shape::random(&mut rng);
        let start_ms = now_ms();
        match request(&http, &url, shape, None).await {
            Ok(()) => soak.clients.served(shape),
            Err(refusal) => soak.clients.failed(Failure {
                start_ms,
                end_ms: now_ms(),
                slot,
                instance,
                request: shape.label(),
                status: refusal.status,
                symptom: refusal.symptom,
                detail: refusal.detail,
            }),
        }
        let think = Duration::from_millis(rng.random_range(50..250));
        nap(&mut stop, think).await;
    }
}
