//! `timbre health`: the daemon's gRPC health status for `timbre.v1.Timbre`.

use std::time::Duration;

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use super::Ctx;
use crate::error::{Error, Outcome};

/// The service whose health is asked for.
pub const SERVICE: &str = "timbre.v1.Timbre";

/// A daemon that accepted the connection but does not answer a health check in this long is
/// not serving (it may still be starting).
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(ctx: &mut Ctx<'_>) -> Result<Outcome, Error> {
    run_within(ctx, TIMEOUT).await
}

pub async fn run_within(ctx: &mut Ctx<'_>, timeout: Duration) -> Result<Outcome, Error> {
    let request = HealthCheckRequest { service: SERVICE.into() };
    let mut health = HealthClient::new(ctx.channel.clone());
    let check = health.check(request);
    let Ok(reply) = tokio::time::timeout(timeout, check).await else {
        return Err(Error::Unreachable {
            addr: ctx.addr.clone(),
            reason: format!("no answer to a health check within {:?}", timeout),
        });
    };
    let status = reply?.into_inner().status();
    if ctx.json {
        let value = serde_json::json!({ "addr": ctx.addr, "status": status.as_str_name() });
        ctx.print_json(&value)?;
    } else {
        writeln!(ctx.out, "{}: {}", ctx.addr, status.as_str_name())?;
    }
    Ok(if status == ServingStatus::Serving { Outcome::Success } else { Outcome::SomeFailed })
}
