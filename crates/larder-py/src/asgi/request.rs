//! An ASGI scope as an `http::Request`: the method, the target as the client sent it
//! (`raw_path`, else `path` re-escaped, and `query_string`), the headers, and `Host` from the
//! server's address when the client sent none (HTTP/1.0).

use http::{HeaderName, HeaderValue, Method, Request, Uri, header};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

/// The request the scope describes; `None` for one that is not valid HTTP, which the
/// middleware passes to the app uncached rather than guess at.
pub(crate) fn from_scope(scope: &Bound<'_, PyDict>) -> PyResult<Option<Request<()>>> {
    // Interned keys: a `&str` key would be made into a new Python string on every lookup.
    let py = scope.py();
    let Some(method) = scope.get_item(intern!(py, "method"))? else {
        return Ok(None);
    };
    let Ok(method) = Method::from_bytes(method.cast::<PyString>()?.to_cow()?.as_bytes()) else {
        return Ok(None);
    };
    let mut target = match scope.get_item(intern!(py, "raw_path"))? {
        Some(raw) if !raw.is_none() => raw.cast::<PyBytes>()?.as_bytes().to_vec(),
        _ => match scope.get_item(intern!(py, "path"))? {
            Some(path) => escape_path(&path.extract::<String>()?),
            None => return Ok(None),
        },
    };
    if let Some(query) = scope.get_item(intern!(py, "query_string"))?
        && let Ok(query) = query.cast::<PyBytes>()
        && !query.as_bytes().is_empty()
    {
        target.push(b'?');
        target.extend_from_slice(query.as_bytes());
    }
    let Ok(uri) = Uri::from_maybe_shared(target) else {
        return Ok(None);
    };
    let mut req = Request::new(());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    let headers = req.headers_mut();
    if let Some(list) = scope.get_item(intern!(py, "headers"))? {
        for pair in list.try_iter()? {
            let (name, value): (Bound<'_, PyBytes>, Bound<'_, PyBytes>) = pair?.extract()?;
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value.as_bytes()),
            ) else {
                return Ok(None);
            };
            headers.append(name, value);
        }
    }
    if !headers.contains_key(header::HOST)
        && let Some(server) = scope.get_item(intern!(py, "server"))?
        && let Ok((host, port)) = server.extract::<(String, u16)>()
        && let Ok(value) = HeaderValue::from_str(&format!("{host}:{port}"))
    {
        headers.insert(header::HOST, value);
    }
    Ok(Some(req))
}

/// A decoded path escaped again, for servers that give no `raw_path`: bytes outside RFC 3986's
/// path characters become `%XX`.
fn escape_path(path: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for &b in path.as_bytes() {
        let plain = b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b);
        if plain {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}
