//! Python values in the cache. The memory tier holds the object itself (a hit returns the same
//! object, as cachetools does: treat cached objects as immutable); a remote store holds an
//! encoded tree of the types FastAPI code returns, with no pickle: `None`, `bool`, `int` of any
//! size, `float`, `str`, `bytes`, `list`, `tuple`, `dict`, `datetime`, `date`, `UUID`,
//! `Decimal`. Anything else is a `TypeError` that names its type, before anything is stored.

use bytes::Bytes;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Nesting deeper than this is refused (it also stops a value that contains itself).
const MAX_DEPTH: usize = 128;

/// A Python object as the cache holds it, and whether it may travel pickled.
pub(crate) struct PyValue(pub Py<PyAny>, pub bool);

/// Whether this process may unpickle values from stores: some cache asked for `pickle=True`.
static UNPICKLING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub(crate) fn allow_unpickling() {
    UNPICKLING.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The encoded form: a tree whose every node says its Python type.
#[derive(Serialize, Deserialize)]
enum Wire {
    None,
    Bool(bool),
    Int(i64),
    /// An int outside 64 bits, in decimal.
    BigInt(String),
    Float(f64),
    Str(String),
    Bytes(Bytes),
    List(Vec<Wire>),
    Tuple(Vec<Wire>),
    Dict(Vec<(Wire, Wire)>),
    /// ISO 8601, as `isoformat()` writes it (with its offset when aware).
    DateTime(String),
    Date(String),
    Uuid(String),
    Decimal(String),
    /// A value only pickle could encode, for a cache that asked for it.
    Pickle(Bytes),
    /// A dataclass instance or a Pydantic model: its class (`module`, `qualname`) and fields.
    Object {
        module: String,
        qualname: String,
        pydantic: bool,
        fields: Vec<(String, Wire)>,
    },
}

/// Checks that `value` can be encoded (the `TypeError` comes before anything is stored).
pub(crate) fn check(value: &Bound<'_, PyAny>, pickle: bool) -> PyResult<()> {
    encode(value, pickle).map(drop)
}

/// The encoded form: native, or with `pickle`, pickled when native fails.
fn encode(value: &Bound<'_, PyAny>, pickle: bool) -> PyResult<Wire> {
    match to_wire(value, 0) {
        Ok(wire) => Ok(wire),
        Err(native) if pickle => {
            let py = value.py();
            let dumped = py
                .import("pickle")?
                .call_method1("dumps", (value, 5))
                .map_err(|_| native)?;
            Ok(Wire::Pickle(Bytes::copy_from_slice(
                dumped.cast::<PyBytes>()?.as_bytes(),
            )))
        }
        Err(native) => Err(native),
    }
}

fn to_wire(v: &Bound<'_, PyAny>, depth: usize) -> PyResult<Wire> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "larder cannot encode a value nested deeper than {MAX_DEPTH} levels"
        )));
    }
    if v.is_none() {
        return Ok(Wire::None);
    }
    // bool before int: it is one.
    if v.is_exact_instance_of::<PyBool>() {
        return Ok(Wire::Bool(v.extract()?));
    }
    if v.is_exact_instance_of::<PyInt>() {
        return Ok(match v.extract::<i64>() {
            Ok(i) => Wire::Int(i),
            Err(_) => Wire::BigInt(v.str()?.to_string()),
        });
    }
    if v.is_exact_instance_of::<PyFloat>() {
        return Ok(Wire::Float(v.extract()?));
    }
    if v.is_exact_instance_of::<PyString>() {
        return Ok(Wire::Str(v.extract()?));
    }
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(Wire::Bytes(Bytes::copy_from_slice(b.as_bytes())));
    }
    if let Ok(list) = v.cast::<PyList>() {
        return list
            .iter()
            .map(|item| to_wire(&item, depth + 1))
            .collect::<PyResult<_>>()
            .map(Wire::List);
    }
    if let Ok(tuple) = v.cast::<PyTuple>() {
        return tuple
            .iter()
            .map(|item| to_wire(&item, depth + 1))
            .collect::<PyResult<_>>()
            .map(Wire::Tuple);
    }
    if let Ok(dict) = v.cast::<PyDict>() {
        return dict
            .iter()
            .map(|(k, item)| Ok((to_wire(&k, depth + 1)?, to_wire(&item, depth + 1)?)))
            .collect::<PyResult<_>>()
            .map(Wire::Dict);
    }
    let py = v.py();
    let module = v.get_type().getattr("__module__")?.extract::<String>()?;
    let name = v.get_type().qualname()?.to_string();
    let text = || -> PyResult<String> { Ok(v.str()?.to_string()) };
    match (module.as_str(), name.as_str()) {
        ("datetime", "datetime") => Ok(Wire::DateTime(v.call_method0("isoformat")?.extract()?)),
        ("datetime", "date") => Ok(Wire::Date(v.call_method0("isoformat")?.extract()?)),
        ("uuid", "UUID") => Ok(Wire::Uuid(text()?)),
        ("decimal", "Decimal") => Ok(Wire::Decimal(text()?)),
        _ => {
            if let Some(object) = object_to_wire(v, &module, &name, depth)? {
                return Ok(object);
            }
            let _ = py;
            Err(PyTypeError::new_err(format!(
                "larder cannot cache a value of type {module}.{name}: use dict, list, tuple, \
                 str, bytes, int, float, bool, None, datetime, date, UUID, Decimal, a \
                 dataclass or a Pydantic model"
            )))
        }
    }
}

/// A dataclass instance's fields, or a Pydantic model's `model_dump()`, with its class.
fn object_to_wire(
    v: &Bound<'_, PyAny>,
    module: &str,
    qualname: &str,
    depth: usize,
) -> PyResult<Option<Wire>> {
    let py = v.py();
    let dataclasses = py.import("dataclasses")?;
    let (pydantic, dict) = if dataclasses
        .call_method1("is_dataclass", (v,))?
        .extract::<bool>()?
    {
        let dict = pyo3::types::PyDict::new(py);
        for field in dataclasses.call_method1("fields", (v,))?.try_iter()? {
            let name = field?.getattr("name")?;
            dict.set_item(&name, v.getattr(name.cast::<PyString>()?)?)?;
        }
        (false, dict)
    } else if v.get_type().hasattr("model_validate")? && v.hasattr("model_dump")? {
        let dumped = v.call_method0("model_dump")?;
        (true, dumped.cast_into::<PyDict>()?)
    } else {
        return Ok(None);
    };
    let mut fields = Vec::with_capacity(dict.len());
    for (k, item) in dict.iter() {
        fields.push((k.extract::<String>()?, to_wire(&item, depth + 1)?));
    }
    Ok(Some(Wire::Object {
        module: module.to_owned(),
        qualname: qualname.to_owned(),
        pydantic,
        fields,
    }))
}

/// The class a stored object names, only from a module this process has imported already, and
/// only if it is a dataclass or a Pydantic model: data from a store never imports code or
/// calls anything else.
fn object_class<'py>(
    py: Python<'py>,
    module: &str,
    qualname: &str,
    pydantic: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let unknown = || {
        PyValueError::new_err(format!(
            "a stored value names {module}.{qualname}, which is not a dataclass or Pydantic \
             model this process has imported"
        ))
    };
    let modules = py.import("sys")?.getattr("modules")?;
    let Ok(mut class) = modules.get_item(module) else {
        return Err(unknown());
    };
    for part in qualname.split('.') {
        class = class.getattr(part).map_err(|_| unknown())?;
    }
    let is_class = class.is_instance_of::<pyo3::types::PyType>();
    let fits = if pydantic {
        is_class && class.hasattr("model_validate")?
    } else {
        is_class
            && py
                .import("dataclasses")?
                .call_method1("is_dataclass", (&class,))?
                .extract::<bool>()?
    };
    if fits { Ok(class) } else { Err(unknown()) }
}

fn from_wire(py: Python<'_>, w: Wire) -> PyResult<Py<PyAny>> {
    Ok(match w {
        Wire::None => py.None(),
        Wire::Bool(b) => PyBool::new(py, b).to_owned().into_any().unbind(),
        Wire::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        Wire::BigInt(s) => py.get_type::<PyInt>().call1((s,))?.unbind(),
        Wire::Float(f) => PyFloat::new(py, f).into_any().unbind(),
        Wire::Str(s) => PyString::new(py, &s).into_any().unbind(),
        Wire::Bytes(b) => PyBytes::new(py, &b).into_any().unbind(),
        Wire::List(items) => {
            let items = items
                .into_iter()
                .map(|i| from_wire(py, i))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any().unbind()
        }
        Wire::Tuple(items) => {
            let items = items
                .into_iter()
                .map(|i| from_wire(py, i))
                .collect::<PyResult<Vec<_>>>()?;
            PyTuple::new(py, items)?.into_any().unbind()
        }
        Wire::Dict(pairs) => {
            let dict = PyDict::new(py);
            for (k, v) in pairs {
                dict.set_item(from_wire(py, k)?, from_wire(py, v)?)?;
            }
            dict.into_any().unbind()
        }
        Wire::DateTime(s) => py
            .import("datetime")?
            .getattr("datetime")?
            .call_method1("fromisoformat", (s,))?
            .unbind(),
        Wire::Date(s) => py
            .import("datetime")?
            .getattr("date")?
            .call_method1("fromisoformat", (s,))?
            .unbind(),
        Wire::Uuid(s) => py.import("uuid")?.getattr("UUID")?.call1((s,))?.unbind(),
        Wire::Decimal(s) => py
            .import("decimal")?
            .getattr("Decimal")?
            .call1((s,))?
            .unbind(),
        Wire::Pickle(bytes) => {
            if !UNPICKLING.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(PyValueError::new_err(
                    "a stored value is pickled; open a cache with pickle=True to read it",
                ));
            }
            py.import("pickle")?
                .call_method1("loads", (PyBytes::new(py, &bytes),))?
                .unbind()
        }
        Wire::Object {
            module,
            qualname,
            pydantic,
            fields,
        } => {
            let class = object_class(py, &module, &qualname, pydantic)?;
            let kwargs = PyDict::new(py);
            for (name, value) in fields {
                kwargs.set_item(name, from_wire(py, value)?)?;
            }
            if pydantic {
                class.call_method1("model_validate", (kwargs,))?.unbind()
            } else {
                class.call((), Some(&kwargs))?.unbind()
            }
        }
    })
}

impl Serialize for PyValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let wire = crate::bridge::attach(|py| encode(self.0.bind(py), self.1))
            .map_err(|e| serde::ser::Error::custom(e.to_string()))?;
        wire.serialize(s)
    }
}

impl<'de> Deserialize<'de> for PyValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(d)?;
        crate::bridge::attach(|py| from_wire(py, wire))
            .map(|v| PyValue(v, false))
            .map_err(|e| serde::de::Error::custom(e.to_string()))
    }
}
