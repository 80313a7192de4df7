//! `@cached`'s keys: the function's module and qualified name, then each argument encoded so that
//! no other argument can spell the same text (every part says its type and is length-prefixed or
//! self-delimiting). Built in Rust so a hit costs one call from the decorator.

use std::fmt::Write;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// Containers nested deeper than this are encoded by their repr.
const MAX_DEPTH: usize = 32;

/// The key of one decorated function's calls.
#[pyclass(module = "larder", frozen)]
pub struct CallKey {
    prefix: String,
    names: Vec<String>,
    /// Positions of the parameters that key the call (not skipped).
    kept: Vec<usize>,
}

#[pymethods]
impl CallKey {
    #[new]
    fn new(prefix: String, names: Vec<String>, skip: Vec<String>) -> Self {
        let kept = (0..names.len())
            .filter(|&i| !skip.contains(&names[i]))
            .collect();
        Self {
            prefix,
            names,
            kept,
        }
    }

    /// The key of a call that passed every parameter positionally, or `None` for any other
    /// call shape (the caller binds the signature and uses `named`).
    fn positional(&self, args: &Bound<'_, PyTuple>) -> PyResult<Option<String>> {
        if args.len() != self.names.len() {
            return Ok(None);
        }
        let mut key = self.start();
        for (n, &i) in self.kept.iter().enumerate() {
            if n > 0 {
                key.push(';');
            }
            key.push_str(&self.names[i]);
            key.push('=');
            encode(&args.get_borrowed_item(i)?.to_owned(), &mut key, 0)?;
        }
        key.push(')');
        Ok(Some(key))
    }

    /// The key of a call from its bound arguments (name -> value, in parameter order).
    fn named(&self, arguments: &Bound<'_, PyDict>) -> PyResult<String> {
        let mut key = self.start();
        let mut first = true;
        for (name, value) in arguments.iter() {
            let name: String = name.extract()?;
            if !self.kept.iter().any(|&i| self.names[i] == name) && self.names.contains(&name) {
                continue;
            }
            if !first {
                key.push(';');
            }
            first = false;
            key.push_str(&name);
            key.push('=');
            encode(&value, &mut key, 0)?;
        }
        key.push(')');
        Ok(key)
    }
}

impl CallKey {
    fn start(&self) -> String {
        let mut key = String::with_capacity(self.prefix.len() + 64);
        key.push_str(&self.prefix);
        key.push('(');
        key
    }

    /// The key of a positional call, for the hit path (`None`: another call shape).
    pub(crate) fn of_positional(&self, args: &Bound<'_, PyTuple>) -> PyResult<Option<String>> {
        self.positional(args)
    }
}

/// `tag`, the length in decimal, `:`.
fn push_len(out: &mut String, tag: char, len: usize) {
    out.push(tag);
    let mut digits = [0u8; 20];
    let mut n = len;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(d as char);
    }
    out.push(':');
}

unsafe extern "C" {
    /// In every CPython this package supports (3.9+); part of the limited API only from 3.10,
    /// which is why pyo3 does not offer it to an abi3-py39 build.
    fn PyUnicode_AsUTF8AndSize(
        unicode: *mut pyo3::ffi::PyObject,
        size: *mut pyo3::ffi::Py_ssize_t,
    ) -> *const std::ffi::c_char;
}

/// A `str`'s text without a copy: CPython keeps its UTF-8 form inside the object. `None` for a
/// string UTF-8 cannot hold (lone surrogates); the caller falls back to a copying conversion.
fn utf8<'a>(v: &'a Bound<'_, PyAny>) -> Option<&'a str> {
    let mut size: pyo3::ffi::Py_ssize_t = 0;
    // SAFETY: `v` is an exact `str` (checked by the caller) and the GIL is held (we have a
    // `Bound`). CPython returns a pointer to UTF-8 bytes cached in the object, valid while the
    // object lives, which the returned borrow of `v` guarantees; NULL (with an exception set,
    // cleared here) when the string cannot be encoded.
    unsafe {
        let data = PyUnicode_AsUTF8AndSize(v.as_ptr(), &mut size);
        if data.is_null() {
            pyo3::ffi::PyErr_Clear();
            return None;
        }
        let bytes = std::slice::from_raw_parts(data.cast::<u8>(), usize::try_from(size).ok()?);
        std::str::from_utf8(bytes).ok()
    }
}

/// Appends `v`'s self-delimiting encoding.
fn encode(v: &Bound<'_, PyAny>, out: &mut String, depth: usize) -> PyResult<()> {
    if v.is_none() {
        out.push('N');
    } else if v.is_exact_instance_of::<PyBool>() {
        out.push_str(if v.extract::<bool>()? { "b1" } else { "b0" });
    } else if v.is_exact_instance_of::<PyInt>() {
        out.push('i');
        match v.extract::<i64>() {
            Ok(i) => {
                let _ = write!(out, "{i}");
            }
            Err(_) => out.push_str(&v.str()?.to_string()),
        }
        out.push('.');
    } else if v.is_exact_instance_of::<PyString>() {
        match utf8(v) {
            Some(s) => {
                push_len(out, 's', s.len());
                out.push_str(s);
            }
            None => {
                let s = v.cast::<PyString>()?.to_cow()?;
                push_len(out, 's', s.len());
                out.push_str(&s);
            }
        }
    } else if v.is_exact_instance_of::<PyFloat>() {
        let _ = write!(out, "f{:?}.", v.extract::<f64>()?.to_bits());
    } else if let Ok(b) = v.cast::<PyBytes>() {
        let bytes = b.as_bytes();
        let _ = write!(out, "y{}:", bytes.len() * 2);
        for byte in bytes {
            let _ = write!(out, "{byte:02x}");
        }
    } else if depth < MAX_DEPTH
        && let Ok(t) = v.cast::<PyTuple>()
    {
        let _ = write!(out, "t{}[", t.len());
        for item in t.iter() {
            encode(&item, out, depth + 1)?;
        }
        out.push(']');
    } else if depth < MAX_DEPTH
        && let Ok(l) = v.cast::<PyList>()
    {
        let _ = write!(out, "l{}[", l.len());
        for item in l.iter() {
            encode(&item, out, depth + 1)?;
        }
        out.push(']');
    } else if depth < MAX_DEPTH
        && let Ok(d) = v.cast::<PyDict>()
    {
        let mut pairs = Vec::with_capacity(d.len());
        for (k, item) in d.iter() {
            let (mut ek, mut ev) = (String::new(), String::new());
            encode(&k, &mut ek, depth + 1)?;
            encode(&item, &mut ev, depth + 1)?;
            pairs.push((ek, ev));
        }
        pairs.sort();
        let _ = write!(out, "d{}{{", pairs.len());
        for (k, item) in pairs {
            out.push_str(&k);
            out.push_str(&item);
        }
        out.push('}');
    } else {
        let kind = v.get_type();
        let text = format!(
            "{}.{}:{}",
            kind.getattr("__module__")?.str()?,
            kind.qualname()?,
            v.repr()?
        );
        let _ = write!(out, "o{}:", text.len());
        out.push_str(&text);
    }
    Ok(())
}
