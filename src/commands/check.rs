//! `check [--remote]`: validate the configuration; with --remote resolve every secret and
//! every ECS service and report all problems at once.

use crate::config::{duration, Config};
use crate::rotation::deploy::{Deployer, Described, DESCRIBE_BATCH};
use crate::rotation::store::{describe_all, SecretStore, AWSCURRENT};
use std::collections::BTreeMap;

/// One line per secret: what the schedule means in plain words, so "1m" (a minute) or
/// "720h" (30 days) is seen for what it is.
pub fn describe_secret(s: &crate::config::SecretConfig) -> String {
    let mut line = format!(
        "  {}: every {} ({})",
        s.name,
        duration::format(s.every.get()),
        duration::describe(s.every.get())
    );
    if let Some(w) = &s.window {
        line.push_str(&format!(
            ", window {} for {} ({})",
            w.expr,
            duration::format(w.duration),
            w.timezone
        ));
    }
    if !s.jitter.get().is_zero() {
        line.push_str(&format!(
            ", jitter up to {}",
            duration::format(s.jitter.get())
        ));
    }
    if !s.target.is_none() {
        line.push_str(&format!(", target {}", s.target.kind()));
    }
    match (s.services().count(), s.commands().count()) {
        (0, 0) => line.push_str(", no consumer to redeploy"),
        (n, 0) => line.push_str(&format!(", redeploys {n} service(s)")),
        (0, c) => line.push_str(&format!(", restarts {c} consumer(s) by command")),
        (n, c) => line.push_str(&format!(
            ", redeploys {n} service(s), restarts {c} consumer(s) by command"
        )),
    }
    line
}

/// `check --remote` for the consumer commands: each program (command and verify) exists
/// and is executable here (nothing is run). One problem line per program.
pub fn check_programs(cfg: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    for s in &cfg.secrets {
        for c in s.commands() {
            let programs = std::iter::once(("command", &c.command))
                .chain(c.verify.as_ref().map(|v| ("verify", v)));
            for (what, argv) in programs {
                let Some(program) = argv.first() else {
                    continue;
                };
                if let Err(why) = crate::process::check(program) {
                    problems.push(format!(
                        "{}: consumer {c}: {what} program {program}: {why}",
                        s.name
                    ));
                }
            }
        }
    }
    problems
}

pub async fn run(cfg: &Config, remote: bool) -> i32 {
    let services: usize = cfg.secrets.iter().map(|s| s.services().count()).sum();
    let commands: usize = cfg.secrets.iter().map(|s| s.commands().count()).sum();
    println!(
        "config ok: {} file(s), {} secret(s), {} consumer service(s){}",
        cfg.files.len(),
        cfg.secrets.len(),
        services,
        if commands > 0 {
            format!(", {commands} consumer command(s)")
        } else {
            String::new()
        }
    );
    for s in &cfg.secrets {
        println!("{}", describe_secret(s));
    }
    for w in cfg
        .secrets
        .iter()
        .flat_map(|s| crate::rotation::target::config_warnings(s))
    {
        eprintln!("warning: {w}");
    }
    for g in &cfg.groups {
        let order: Vec<&str> = g.members.iter().map(|m| m.as_str()).collect();
        println!(
            "group {}: {} in this order, soak {}",
            g.name,
            order.join(" -> "),
            crate::config::duration::format(g.soak)
        );
    }
    let mut missing_keys = 0;
    for n in &cfg.notify {
        let kinds: Vec<&str> = n.events.iter().map(|k| k.label()).collect();
        println!(
            "notify {} ({}): {}",
            n.name,
            n.sink.kind(),
            kinds.join(", ")
        );
        // The daemon refuses to start without its HMAC key (exit 78): say so here too.
        if let Some(var) = n.sink.secret_env() {
            if std::env::var(var).map_or(true, |v| v.is_empty()) {
                eprintln!(
                    "error: notify {}: the environment variable {var} (secret_env, the HMAC key) is not set here; the daemon needs it at start",
                    n.name
                );
                missing_keys += 1;
            }
        }
    }
    if let Some(t) = &cfg.ha.lock_table {
        println!(
            "ha: {} replica(s), per-secret leases in DynamoDB table {t} (lease ttl {})",
            cfg.ha.replicas,
            crate::config::duration::format(cfg.ha.lease_ttl)
        );
    }
    if let Some(q) = &cfg.events.queue_url {
        println!(
            "events: ECS deployment events from {q} (safety poll every {})",
            crate::config::duration::format(cfg.events.safety_poll)
        );
    }
    if missing_keys > 0 {
        return crate::exit::CONFIG;
    }
    if !remote {
        return crate::exit::OK;
    }
    let ctx = match super::connect(cfg).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (store, ecs) = super::clients(cfg, ctx);
    let mut problems: Vec<String> = Vec::new();
    // A check that could not reach AWS for part of it is not a verdict: exit 69, not 1.
    let mut unreachable = false;

    let secrets: Vec<&crate::config::SecretConfig> =
        cfg.secrets.iter().map(|s| s.as_ref()).collect();
    let refs: Vec<_> = secrets.iter().map(|s| s.secret.clone()).collect();
    let metas = describe_all(&store, &refs).await;
    let errors: Vec<_> = metas.iter().filter_map(|m| m.as_ref().err()).collect();
    if !secrets.is_empty() && errors.len() == secrets.len() {
        if let Some(e) = super::common_setup_error(errors.iter().copied()) {
            eprintln!("error: cannot reach Secrets Manager: {e}");
            return super::common_failure_code(e);
        }
    }
    for (s, meta) in secrets.iter().zip(&metas) {
        match meta {
            Err(e) => {
                unreachable |= super::is_unreachable(e);
                problems.push(format!("{}: secret {}: {e}", s.name, s.secret.id))
            }
            Ok(m) if m.deleted => problems.push(format!(
                "{}: secret {} is scheduled for deletion",
                s.name, s.secret.id
            )),
            Ok(m) if m.version_with(AWSCURRENT).is_none() => problems.push(format!(
                "{}: secret {} has no AWSCURRENT version",
                s.name, s.secret.id
            )),
            Ok(m) => {
                if m.rotation_enabled {
                    problems.push(format!("{}: secret {} also has AWS-native rotation enabled; disable it (two rotators fight over AWSPENDING)", s.name, s.secret.id));
                }
                // Readable: GetSecretValue needs its own permission (and KMS).
                if let Err(e) = store
                    .get_value(&s.secret, crate::rotation::store::Select::Stage(AWSCURRENT))
                    .await
                {
                    unreachable |= super::is_unreachable(&e);
                    problems.push(format!(
                        "{}: secret {} is not readable: {e}",
                        s.name, s.secret.id
                    ));
                }
            }
        }
    }

    // Each target that can check itself on the live system (its user exists, the admin
    // may alter it), with the secrets that were readable.
    let clients = crate::rotation::target::TargetClients::default();
    for (s, meta) in secrets.iter().zip(&metas) {
        if s.target.is_none() || !matches!(meta, Ok(m) if !m.deleted) {
            continue;
        }
        let env = crate::rotation::target::TargetEnv {
            cfg: s,
            store: &store,
            clients: &clients,
            clock: &crate::clock::SystemClock,
        };
        match crate::rotation::target::check_remote(&env).await {
            Ok(found) => {
                use crate::rotation::target::RemoteFinding;
                for f in found {
                    let at = format!("{}: target {}", s.name, s.target.kind());
                    match f {
                        RemoteFinding::Problem(p) => problems.push(format!("{at}: {p}")),
                        RemoteFinding::Warning(w) => eprintln!("warning: {at}: {w}"),
                        RemoteFinding::Note(n) => println!("{at}: {n}"),
                    }
                }
            }
            Err(e) => problems.push(format!("{}: target {}: {e}", s.name, s.target.kind())),
        }
    }

    if let Some(source) = super::events(cfg, &crate::aws::AwsContext::load(&cfg.aws).await) {
        match source.check().await {
            Ok(_) => {}
            Err(e) => {
                unreachable |= super::is_unreachable(&e);
                problems.push(format!("[events] queue {}: {e}", source.queue_url()));
            }
        }
    }

    if let Some(t) = &cfg.ha.lock_table {
        let ctx = crate::aws::AwsContext::load(&cfg.aws).await;
        let table = crate::aws::lease::DynamoLeases::new(ctx, cfg.ha.account.clone(), t);
        match table.check_table().await {
            Ok(found) => problems.extend(found),
            Err(e) => problems.push(format!("lock table {t}: {e}")),
        }
    }

    // Services grouped per (account, cluster), described 10 at a time.
    let mut groups: BTreeMap<
        (crate::ids::Account, crate::ids::ClusterName),
        Vec<(&str, crate::ids::ServiceName)>,
    > = BTreeMap::new();
    for s in &cfg.secrets {
        for svc in s.services() {
            groups
                .entry((s.account().clone(), svc.cluster.clone()))
                .or_default()
                .push((s.name.as_str(), svc.service.clone()));
        }
    }
    for ((account, cluster), list) in groups {
        for chunk in list.chunks(DESCRIBE_BATCH) {
            let names: Vec<_> = chunk.iter().map(|(_, n)| n.clone()).collect();
            match ecs.describe(&account, &cluster, &names).await {
                Err(e) => {
                    unreachable |= super::is_unreachable(&e);
                    problems.push(format!("cluster {cluster}: {e}"))
                }
                Ok(states) => {
                    for ((secret, svc), st) in chunk.iter().zip(states) {
                        match st {
                            Described::Missing(r) => problems.push(format!("{secret}: service {cluster}/{svc} not found ({r})")),
                            Described::Found(state) if state.status != "ACTIVE" => problems.push(format!("{secret}: service {cluster}/{svc} is {}", state.status)),
                            Described::Found(state) if !state.forceable() => problems.push(format!(
                                "{secret}: service {cluster}/{svc} uses the {} deployment controller; a forced new deployment is only possible with ECS",
                                state.controller.unwrap_or_default()
                            )),
                            Described::Found(_) => {}
                        }
                    }
                }
            }
        }
    }
    problems.extend(check_programs(cfg));
    if problems.is_empty() {
        println!(
            "remote ok: {} secret(s) readable, {} service(s) can be redeployed{}{}",
            cfg.secrets.len(),
            services,
            if commands > 0 {
                format!(", {commands} consumer command(s) can be run")
            } else {
                String::new()
            },
            if cfg.ha.enabled() {
                ", lock table usable"
            } else {
                ""
            }
        );
        crate::exit::OK
    } else {
        for p in &problems {
            eprintln!("{p}");
        }
        if unreachable {
            eprintln!(
                "error: {} remote problem(s); AWS could not be reached for some of them",
                problems.len()
            );
            crate::exit::UNAVAILABLE
        } else {
            eprintln!("error: {} remote problem(s)", problems.len());
            crate::exit::FAILURE
        }
    }
}
