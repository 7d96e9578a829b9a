//! `schema-registry-stand-in [--port N]`: serves the stand-in registry until killed.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;

use sluice_registry_stand_in::StandIn;

fn main() -> ExitCode {
    let port = match parse_port(std::env::args().skip(1).collect()) {
        Ok(port) => port,
        Err(message) => {
            eprintln!("{message}\nusage: schema-registry-stand-in [--port N]");
            return ExitCode::from(2);
        }
    };
    match StandIn::start_at(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into()) {
        Ok(registry) => {
            println!("schema registry stand-in listening on {}", registry.url());
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            eprintln!("cannot listen on 127.0.0.1:{port}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--port N` (or `--port=N`); no arguments means port 8081, Confluent's default.
fn parse_port(args: Vec<String>) -> Result<u16, String> {
    let value = match args.as_slice() {
        [] => return Ok(8081),
        [flag, value] if flag == "--port" => Some(value.as_str()),
        [arg] => arg.strip_prefix("--port="),
        _ => None,
    };
    let Some(value) = value else {
        return Err(format!("unexpected arguments: {}", args.join(" ")));
    };
    value
        .parse()
        .map_err(|_| format!("--port takes a port number, not '{value}'"))
}
