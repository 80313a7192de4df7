//! Just enough of the Redis and Memcached wire protocols to probe a server and administer a test
//! cluster, with no client library, so the testkit never depends on the code it helps to test.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use crate::Error;

const IO_TIMEOUT: Duration = Duration::from_secs(5);

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// Sends one Redis command and returns its reply as text (an array's items one per line).
/// An error reply is returned as `Err`.
pub(crate) fn redis(port: u16, args: &[&str]) -> Result<String, Error> {
    let io = |source| Error::Io {
        what: "talking to redis-server",
        source,
    };
    let mut stream = connect(port).map_err(io)?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut reader = BufReader::new(stream);
    read_reply(&mut reader).map_err(io)?.map_err(Error::Reply)
}

fn read_reply(reader: &mut impl BufRead) -> std::io::Result<Result<String, String>> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let line = line.trim_end_matches(['\r', '\n']);
    let (kind, rest) = line.split_at(line.len().min(1));
    let bad = || std::io::Error::other(format!("bad reply line {line:?}"));
    Ok(match kind {
        "+" | ":" => Ok(rest.to_owned()),
        "-" => Err(rest.to_owned()),
        "$" => {
            let len: i64 = rest.parse().map_err(|_| bad())?;
            if len < 0 {
                return Ok(Ok(String::new()));
            }
            let len = usize::try_from(len).map_err(|_| bad())?;
            let mut body = vec![0; len + 2];
            reader.read_exact(&mut body)?;
            body.truncate(len);
            Ok(String::from_utf8_lossy(&body).into_owned())
        }
        "*" => {
            let n: i64 = rest.parse().map_err(|_| bad())?;
            let mut items = Vec::new();
            for _ in 0..n.max(0) {
                match read_reply(reader)? {
                    Ok(item) | Err(item) => items.push(item),
                }
            }
            Ok(items.join("\n"))
        }
        _ => return Err(bad()),
    })
}

/// Whether redis-server answers PING (an auth error is an answer too).
pub(crate) fn redis_answers(port: u16) -> bool {
    match redis(port, &["PING"]) {
        Ok(_) | Err(Error::Reply(_)) => true,
        Err(_) => false,
    }
}

/// Whether memcached answers `version`.
pub(crate) fn memcached_answers(port: u16) -> bool {
    let Ok(mut stream) = connect(port) else {
        return false;
    };
    if stream.write_all(b"version\r\n").is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("VERSION")
}
