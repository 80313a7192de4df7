//! `@cached`'s and `cache_response`'s keys: the function's module and qualified name, then each
//! argument encoded by value so that no other argument can spell the same text (every part says
//! its type and is length-prefixed or self-delimiting). Built in Rust so a hit costs one call
//! from the decorator.
//!
//! Never by address: an object with no value encoding (a plain class's instance, a request, a
//! session) is refused with a `TypeError` that names the argument and the ways out, because its
//! repr holds its address and a later object at the same address would get its result.

use std::fmt::Write;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString,
    PyTuple, PyType,
};

/// Containers nested deeper than this are refused (it also stops a value that holds itself).
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
            encode(&args.get_borrowed_item(i)?.to_owned(), &mut key, 0)
                .map_err(|r| r.into_error(&self.prefix, &self.names[i]))?;
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
            encode(&value, &mut key, 0).map_err(|r| r.into_error(&self.prefix, &name))?;
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

/// Why an argument cannot key a call. Built on the way out of the encoder, so a call that keys
/// costs nothing for it.
enum Refusal {
    Python(PyErr),
    /// The value has no encoding by value: its type, and where it sits inside the argument.
    NoValue {
        at: String,
        type_name: String,
    },
    /// Containers nested past [`MAX_DEPTH`] (or one that holds itself).
    TooDeep {
        at: String,
    },
}

impl From<PyErr> for Refusal {
    fn from(e: PyErr) -> Self {
        Self::Python(e)
    }
}

impl Refusal {
    /// The same refusal one container further out: `at` gains the step taken into it.
    fn inside(mut self, step: impl std::fmt::Display) -> Self {
        if let Self::NoValue { at, .. } | Self::TooDeep { at } = &mut self {
            *at = format!("{step}{at}");
        }
        self
    }

    /// The `TypeError` a caller sees: the function, the argument, and the ways out.
    fn into_error(self, function: &str, argument: &str) -> PyErr {
        match self {
            Self::Python(e) => e,
            Self::TooDeep { at } => PyTypeError::new_err(format!(
                "{function}: argument '{argument}'{at} is nested deeper than {MAX_DEPTH} levels \
                 (or holds itself), too deep to key a cache entry on; leave it out with \
                 skip=['{argument}'] or give a key= template"
            )),
            Self::NoValue { at, type_name } => {
                let per_request = ["starlette.", "fastapi."]
                    .iter()
                    .any(|m| type_name.starts_with(m));
                let what = if per_request {
                    format!(
                        "a {type_name}, a different object on every request; keying on it would \
                         never hit, and keying on its address would hand one caller's result to \
                         another. Leave it out with skip=['{argument}'] and key on what the \
                         result depends on (key=\"...{{user_id}}\"), or let the response cache \
                         (larder.asgi) key the request"
                    )
                } else {
                    format!(
                        "a {type_name}, which has no value to key on (its repr is its address, \
                         which a later object can reuse). Leave it out with \
                         skip=['{argument}'] if the result does not depend on it, give a key= \
                         template, or define __larder_key__(self) on the class, returning the \
                         values that decide the result"
                    )
                };
                PyTypeError::new_err(format!(
                    "{function}: argument '{argument}'{at} is {what}. Keys are built by value \
                     from str, bytes, int, float, bool, None, tuple, list, dict, set, \
                     frozenset, datetime, date, time, timedelta, UUID, Decimal, Enum, \
                     dataclasses, Pydantic models and objects with __larder_key__()"
                ))
            }
        }
    }
}

/// The Python types keys know by value beyond the built-in containers, imported once.
struct Known;

impl Known {
    /// Whether `v` is an instance of `module.name` (one of the types below).
    fn is(v: &Bound<'_, PyAny>, module: &str, name: &str) -> PyResult<bool> {
        v.is_instance(Self::get(v.py(), module, name)?.as_any())
    }

    fn get<'py>(py: Python<'py>, module: &str, name: &str) -> PyResult<Bound<'py, PyType>> {
        use pyo3::sync::PyOnceLock;
        static CELLS: [PyOnceLock<Py<PyType>>; 6] = [const { PyOnceLock::new() }; 6];
        const NAMES: [(&str, &str); 6] = [
            ("enum", "Enum"),
            ("datetime", "date"),
            ("datetime", "time"),
            ("datetime", "timedelta"),
            ("uuid", "UUID"),
            ("decimal", "Decimal"),
        ];
        let i = NAMES
            .iter()
            .position(|&(m, n)| m == module && n == name)
            .expect("a known type");
        CELLS[i].import(py, module, name).cloned()
    }
}

/// Appends `v`'s self-delimiting encoding: every value says its type, and text is
/// length-prefixed, so no value can spell another's encoding. The common types are checked
/// first, by exact type, for the hit path; the rest in [`encode_other`].
fn encode(v: &Bound<'_, PyAny>, out: &mut String, depth: usize) -> Result<(), Refusal> {
    if v.is_none() {
        out.push('N');
    } else if v.is_exact_instance_of::<PyBool>() {
        out.push_str(if v.extract::<bool>()? { "b1" } else { "b0" });
    } else if v.is_exact_instance_of::<PyInt>() {
        push_int(v, out)?;
    } else if v.is_exact_instance_of::<PyString>() {
        push_str(v, out)?;
    } else if v.is_exact_instance_of::<PyFloat>() {
        let _ = write!(out, "f{:?}.", v.extract::<f64>()?.to_bits());
    } else if v.is_exact_instance_of::<PyBytes>() {
        push_bytes(
            'y',
            v.cast::<PyBytes>().map_err(PyErr::from)?.as_bytes(),
            out,
        );
    } else if depth >= MAX_DEPTH {
        return Err(Refusal::TooDeep { at: String::new() });
    } else if v.is_exact_instance_of::<PyTuple>() {
        push_items('t', v, out, depth)?;
    } else if v.is_exact_instance_of::<PyList>() {
        push_items('l', v, out, depth)?;
    } else if v.is_exact_instance_of::<PyDict>() {
        push_dict(v.cast::<PyDict>().map_err(PyErr::from)?, out, depth)?;
    } else {
        encode_other(v, out, depth)?;
    }
    Ok(())
}

/// Everything but the exact built-in types: what a class says it is keyed by
/// (`__larder_key__`), enums, subclasses of the built-ins, sets, dates and times, UUID,
/// Decimal, dataclasses, Pydantic models, classes. Each is prefixed by its type's name, so two
/// types with equal contents never share a key. Anything else is refused.
fn encode_other(v: &Bound<'_, PyAny>, out: &mut String, depth: usize) -> Result<(), Refusal> {
    let py = v.py();
    let kind = v.get_type();
    let type_name = || -> PyResult<String> {
        Ok(format!(
            "{}.{}",
            kind.getattr("__module__")?.str()?,
            kind.qualname()?
        ))
    };
    let typed = |out: &mut String| -> PyResult<()> {
        let name = type_name()?;
        push_len(out, 'T', name.len());
        out.push_str(&name);
        Ok(())
    };
    if kind.hasattr(pyo3::intern!(py, "__larder_key__"))? {
        typed(out)?;
        out.push('K');
        let key = v.call_method0(pyo3::intern!(py, "__larder_key__"))?;
        return encode(&key, out, depth + 1).map_err(|r| r.inside(".__larder_key__()"));
    }
    if Known::is(v, "enum", "Enum")? {
        typed(out)?;
        out.push('E');
        return push_str(&v.getattr(pyo3::intern!(py, "name"))?, out).map_err(Refusal::from);
    }
    if v.is_instance_of::<PyType>() {
        let class = v.cast::<PyType>().map_err(PyErr::from)?;
        let name = format!(
            "{}.{}",
            class.getattr("__module__")?.str()?,
            class.qualname()?
        );
        // A class made inside a function is a new class each time, under the same name.
        if !name.contains("<locals>") {
            push_len(out, 'C', name.len());
            out.push_str(&name);
            return Ok(());
        }
    } else if v.is_instance_of::<PyInt>() {
        typed(out)?;
        return push_int(v, out).map_err(Refusal::from);
    } else if v.is_instance_of::<PyString>() {
        typed(out)?;
        return push_str(v, out).map_err(Refusal::from);
    } else if v.is_instance_of::<PyFloat>() {
        typed(out)?;
        let _ = write!(out, "f{:?}.", v.extract::<f64>()?.to_bits());
        return Ok(());
    } else if let Ok(b) = v.cast::<PyBytes>() {
        typed(out)?;
        push_bytes('y', b.as_bytes(), out);
        return Ok(());
    } else if let Ok(b) = v.cast::<PyByteArray>() {
        typed(out)?;
        push_bytes('y', &b.to_vec(), out);
        return Ok(());
    } else if v.is_instance_of::<PyTuple>() {
        typed(out)?;
        return push_items('t', v, out, depth);
    } else if v.is_instance_of::<PyList>() {
        typed(out)?;
        return push_items('l', v, out, depth);
    } else if let Ok(d) = v.cast::<PyDict>() {
        typed(out)?;
        return push_dict(d, out, depth);
    } else if v.is_instance_of::<PySet>() || v.is_instance_of::<PyFrozenSet>() {
        typed(out)?;
        return push_set(v, out, depth);
    } else if Known::is(v, "datetime", "date")? || Known::is(v, "datetime", "time")? {
        // `isoformat` holds the offset of an aware value; equal instants in two zones key
        // apart, which costs a miss, never a wrong answer.
        typed(out)?;
        return push_str(&v.call_method0(pyo3::intern!(py, "isoformat"))?, out)
            .map_err(Refusal::from);
    } else if Known::is(v, "datetime", "timedelta")? {
        typed(out)?;
        for part in ["days", "seconds", "microseconds"] {
            push_int(&v.getattr(part)?, out)?;
        }
        return Ok(());
    } else if Known::is(v, "uuid", "UUID")? || Known::is(v, "decimal", "Decimal")? {
        typed(out)?;
        return push_str(&v.str()?.into_any(), out).map_err(Refusal::from);
    } else if kind.hasattr(pyo3::intern!(py, "__dataclass_fields__"))? {
        typed(out)?;
        let fields = py
            .import("dataclasses")?
            .call_method1("fields", (v,))?
            .cast_into::<PyTuple>()
            .map_err(PyErr::from)?;
        let _ = write!(out, "o{}{{", fields.len());
        for field in fields.iter() {
            let name = field.getattr(pyo3::intern!(py, "name"))?;
            push_str(&name, out)?;
            let value = v.getattr(name.cast::<PyString>().map_err(PyErr::from)?)?;
            encode(&value, out, depth + 1).map_err(|r| {
                r.inside(format_args!(
                    ".{}",
                    name.str().map_or_else(|_| "?".into(), |s| s.to_string())
                ))
            })?;
        }
        out.push('}');
        return Ok(());
    } else if kind.hasattr(pyo3::intern!(py, "model_validate"))?
        && v.hasattr(pyo3::intern!(py, "model_dump"))?
    {
        typed(out)?;
        let fields = v.call_method0(pyo3::intern!(py, "model_dump"))?;
        return encode(&fields, out, depth + 1);
    }
    Err(Refusal::NoValue {
        at: String::new(),
        type_name: type_name()?,
    })
}

fn push_int(v: &Bound<'_, PyAny>, out: &mut String) -> PyResult<()> {
    out.push('i');
    match v.extract::<i64>() {
        Ok(i) => {
            let _ = write!(out, "{i}");
        }
        Err(_) => out.push_str(&v.call_method0("__index__")?.str()?.to_string()),
    }
    out.push('.');
    Ok(())
}

fn push_str(v: &Bound<'_, PyAny>, out: &mut String) -> PyResult<()> {
    match utf8_of(v) {
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
    Ok(())
}

/// A `str`'s text in place when it is an exact `str` (subclasses take the copying path).
fn utf8_of<'a>(v: &'a Bound<'_, PyAny>) -> Option<&'a str> {
    if v.is_exact_instance_of::<PyString>() {
        utf8(v)
    } else {
        None
    }
}

fn push_bytes(tag: char, bytes: &[u8], out: &mut String) {
    let _ = write!(out, "{tag}{}:", bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
}

fn push_items(
    tag: char,
    v: &Bound<'_, PyAny>,
    out: &mut String,
    depth: usize,
) -> Result<(), Refusal> {
    let _ = write!(out, "{tag}{}[", v.len()?);
    for (i, item) in v.try_iter()?.enumerate() {
        encode(&item?, out, depth + 1).map_err(|r| r.inside(format_args!("[{i}]")))?;
    }
    out.push(']');
    Ok(())
}

/// A dict's pairs sorted by their encodings, so insertion order does not matter.
fn push_dict(d: &Bound<'_, PyDict>, out: &mut String, depth: usize) -> Result<(), Refusal> {
    let mut pairs = Vec::with_capacity(d.len());
    for (k, item) in d.iter() {
        let (mut ek, mut ev) = (String::new(), String::new());
        encode(&k, &mut ek, depth + 1).map_err(|r| r.inside("<a key>"))?;
        encode(&item, &mut ev, depth + 1).map_err(|r| {
            let key = k.repr().map_or_else(|_| "?".into(), |r| r.to_string());
            r.inside(format_args!("[{key}]"))
        })?;
        pairs.push((ek, ev));
    }
    pairs.sort();
    let _ = write!(out, "d{}{{", pairs.len());
    for (k, item) in pairs {
        out.push_str(&k);
        out.push_str(&item);
    }
    out.push('}');
    Ok(())
}

/// A set's members sorted by their encodings: equal sets key alike whatever their order.
fn push_set(v: &Bound<'_, PyAny>, out: &mut String, depth: usize) -> Result<(), Refusal> {
    let mut items = Vec::with_capacity(v.len()?);
    for item in v.try_iter()? {
        let mut e = String::new();
        encode(&item?, &mut e, depth + 1).map_err(|r| r.inside("<a member>"))?;
        items.push(e);
    }
    items.sort();
    let _ = write!(out, "S{}{{", items.len());
    for item in items {
        out.push_str(&item);
    }
    out.push('}');
    Ok(())
}
