//! Times argon2id password verification at the server's default (OWASP) cost: the figure login
//! throughput is judged against (`bench/run.sh`). `hash_time [threads]` runs that many
//! verifications side by side and prints the milliseconds one takes, and the rate they reach.

use std::time::Instant;

use sapine_core::accounts::{HashCost, Password, PasswordHasher};

const ROUNDS: u32 = 60;

#[tokio::main]
async fn main() {
    let threads: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let hasher = PasswordHasher::new(HashCost::default(), threads, threads).expect("default cost is valid");
    let password = Password::parse("password", "correct horse battery staple").expect("password");
    let hash = hasher.hash(&password).await.expect("hash");
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (hasher, password, hash) = (hasher.clone(), password.clone(), hash.clone());
            tokio::spawn(async move {
                for _ in 0..ROUNDS {
                    assert!(hasher.verify(&password, &hash).await.expect("verify"));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = f64::from(ROUNDS) * threads as f64;
    println!(
        "{:.2} ms per verification, {:.1} verifications/s",
        elapsed * 1000.0 * threads as f64 / total,
        total / elapsed
    );
}
