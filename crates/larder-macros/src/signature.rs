//! What a memoized function takes and returns, which decides its key and what is cached.

use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, Ident, Pat, PathArguments, ReturnType, Type};

/// What the function returns.
// One per expansion, at compile time: the size of a `Type` does not matter here.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Returns {
    Plain,
    /// `Option<T>`: `T`.
    Option(Type),
    /// `Result<T, E>`: `T` and `E`.
    Result(Type, Type),
}

pub(crate) fn returns(sig: &syn::Signature) -> syn::Result<(Type, Returns)> {
    let ReturnType::Type(_, ty) = &sig.output else {
        return Err(syn::Error::new(
            sig.ident.span(),
            "#[cached] needs a function that returns a value",
        ));
    };
    let ty = (**ty).clone();
    let kind = match (generic_args(&ty, "Result"), generic_args(&ty, "Option")) {
        (Some(args), _) if args.len() == 2 => Returns::Result(args[0].clone(), args[1].clone()),
        (_, Some(args)) if args.len() == 1 => Returns::Option(args[0].clone()),
        _ => Returns::Plain,
    };
    Ok((ty, kind))
}

/// `T` when `ty` is `Arc<T>`: such a value is stored as `T` and a hit hands out the cache's own
/// `Arc`, with no clone.
pub(crate) fn arc_inner(ty: &Type) -> Option<Type> {
    match generic_args(ty, "Arc")?.as_slice() {
        [inner] => Some(inner.clone()),
        _ => None,
    }
}

/// The type arguments of `ty` when its last path segment is `name`.
fn generic_args(ty: &Type, name: &str) -> Option<Vec<Type>> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    Some(
        args.args
            .iter()
            .filter_map(|a| match a {
                GenericArgument::Type(t) => Some(t.clone()),
                _ => None,
            })
            .collect(),
    )
}

/// One argument of the function.
pub(crate) struct Arg {
    pub name: Ident,
    pub ty: Type,
    /// `&T`: an async fn owns it with `ToOwned` before its run moves into a task.
    pub by_ref: bool,
    pub in_key: bool,
}

/// Whether the function is a method (`&self`), and its other arguments.
pub(crate) fn args(sig: &syn::Signature, skip: &[Ident]) -> syn::Result<(bool, Vec<Arg>)> {
    let mut method = false;
    let mut out = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => {
                if r.reference.is_none() || r.mutability.is_some() {
                    return Err(syn::Error::new(
                        r.span(),
                        "#[cached] methods take `&self` (the cache handle is shared, not borrowed mutably)",
                    ));
                }
                method = true;
            }
            FnArg::Typed(t) => {
                let Pat::Ident(p) = &*t.pat else {
                    return Err(syn::Error::new(
                        t.pat.span(),
                        "#[cached] needs plain argument names (no patterns)",
                    ));
                };
                let (ty, by_ref) = match &*t.ty {
                    Type::Reference(r) if r.mutability.is_some() => {
                        return Err(syn::Error::new(
                            r.span(),
                            "#[cached] cannot memoize a function that takes `&mut`",
                        ));
                    }
                    Type::Reference(r) => ((*r.elem).clone(), true),
                    other => (other.clone(), false),
                };
                out.push(Arg {
                    in_key: !skip.contains(&p.ident),
                    name: p.ident.clone(),
                    ty,
                    by_ref,
                });
            }
        }
    }
    for s in skip {
        if !out.iter().any(|a| &a.name == s) {
            return Err(syn::Error::new(
                s.span(),
                format!("skip({s}): `{s}` is not an argument of this function"),
            ));
        }
    }
    Ok((method, out))
}
