//! [`AnyValue`]: a cached value of any type, shared, with a type check that costs a hit little.
//!
//! `Arc<dyn Any>` would do, but its `downcast` asks the value for its `TypeId` through the vtable,
//! and a 16-byte `TypeId` comes back through memory: the hit then waited on a store the CPU could
//! not forward to the next load, about a fifth of the hit loop's own samples (`perf record`).
//! Here the expected `TypeId` goes to the value instead, in registers, and a `bool` comes back.

use std::any::{Any, TypeId};
use std::sync::Arc;

/// What the memory tier stores. Implemented for every `Send + Sync + 'static` type; used only
/// as `dyn Stored` inside [`AnyValue`], so a call never lands on an `Arc` by mistake.
trait Stored: Any + Send + Sync {
    fn is_type(&self, id: TypeId) -> bool;
    fn as_any(&self) -> &(dyn Any + Send + Sync);
}

impl<T: Any + Send + Sync> Stored for T {
    #[inline]
    fn is_type(&self, id: TypeId) -> bool {
        TypeId::of::<T>() == id
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }
}

/// A shared value of a type known only at run time.
#[derive(Clone)]
pub(crate) struct AnyValue(Arc<dyn Stored>);

impl AnyValue {
    pub(crate) fn new<T: Any + Send + Sync>(value: Arc<T>) -> Self {
        Self(value)
    }

    /// The value as an `Arc<T>` if it is a `T`; itself back otherwise.
    #[inline(always)]
    pub(crate) fn downcast<T: Any + Send + Sync>(self) -> Result<Arc<T>, Self> {
        if !self.stored().is_type(TypeId::of::<T>()) {
            return Err(self);
        }
        let raw = Arc::into_raw(self.0).cast::<T>();
        // SAFETY: the value behind the trait object is a `T` (checked just above), and `raw` is
        // the data pointer of the very `Arc` it came from, so `from_raw` takes that ownership back
        // as an `Arc<T>`: what `Arc::<dyn Any>::downcast` does after its own check.
        Ok(unsafe { Arc::from_raw(raw) })
    }

    /// The value as a `&T` if it is a `T`.
    pub(crate) fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.stored().as_any().downcast_ref::<T>()
    }

    /// Whether anything besides the one holder asking shares this value (a caller still using
    /// a value it got, say).
    pub(crate) fn is_shared(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }

    /// The allocation's address: the value's identity while it lives (compared, never read
    /// through).
    pub(crate) fn addr(&self) -> usize {
        Arc::as_ptr(&self.0).cast::<()>() as usize
    }

    /// Whether both are the very same allocation.
    pub(crate) fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    fn stored(&self) -> &dyn Stored {
        &*self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_comes_back_as_its_own_type_only() {
        let v = AnyValue::new(Arc::new(7u32));
        assert_eq!(v.downcast_ref::<u32>(), Some(&7));
        assert_eq!(v.downcast_ref::<i32>(), None);
        let v = v.downcast::<String>().err().unwrap();
        let n = v.clone().downcast::<u32>().ok().unwrap();
        assert_eq!(*n, 7);
        // The `Arc` handed out is the stored one, not a copy.
        assert_eq!(Arc::strong_count(&n), 2);
        assert!(v.ptr_eq(&v.clone()));
        assert!(!v.ptr_eq(&AnyValue::new(Arc::new(7u32))));
    }

    #[test]
    fn a_value_that_is_itself_an_arc_is_told_from_its_contents() {
        let v = AnyValue::new(Arc::new(Arc::new(1u8)));
        assert!(v.clone().downcast::<u8>().is_err());
        assert_eq!(**v.downcast::<Arc<u8>>().ok().unwrap(), 1);
    }
}
