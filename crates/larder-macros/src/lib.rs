//! `#[cached]`: memoize an async function in a larder `Cache`. Use it as `#[larder::cached]`
//! (the `macros` feature of `larder`); the documentation with examples is on that re-export.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{
    Expr, FnArg, GenericArgument, Ident, ItemFn, LitBool, LitStr, Pat, PathArguments, ReturnType,
    Type,
};

mod template;

use template::Template;

const OPTIONS: &str = "cache, key, skip, ttl, stale, soft_timeout, eager_refresh, tags, namespace, unless, cache_none";

/// Memoizes an async function in a larder `Cache`: one line, and every call goes through
/// `Cache::get_or_fetch`. So single-flight (concurrent callers of a cold call share one run),
/// fail-safe, eager refresh, stats and every store (memory, Redis, Memcached, two-tier) apply.
///
/// ```
/// use larder::cached;
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct Weather { city: String, celsius: i32 }
///
/// #[derive(Clone, Debug)]
/// struct ApiError(String);
///
/// // One entry per city for an hour; `request_id` is not part of the key.
/// #[cached(key = "weather:{city}", ttl = "1h", skip(request_id))]
/// async fn weather(city: &str, request_id: u64) -> Result<Weather, ApiError> {
///     // the slow upstream call
///     Ok(Weather { city: city.to_owned(), celsius: 21 })
/// }
///
/// #[cached]
/// async fn fib(n: u64) -> u64 {
///     if n < 2 { n } else { fib(n - 1).await + fib(n - 2).await }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(weather("Berlin", 1).await.unwrap().celsius, 21);
/// assert!(weather::invalidate("Berlin").await);       // companion: drop one entry
/// let fresh = weather::refresh("Berlin", 2).await;    // companion: run now and store
/// assert_eq!(fib(90).await, 2_880_067_194_370_816_120); // 91 runs, not 2^90
/// # let _ = fresh;
/// # }
/// ```
///
/// # Options
///
/// - `cache = EXPR`: the cache, any expression of type `Cache` (cloned; `self.cache` works in
///   methods). Without it, `larder::default_cache()` (set once with `larder::set_default_cache`).
/// - `key = "template"`: `{arg}` placeholders formatted with `Display`. The default key is the
///   module path, the function name, and every argument's `Debug` form, escaped so that no two
///   argument lists share a key.
/// - `skip(a, b)`: arguments left out of the default key (a request, a database handle).
/// - `ttl`, `stale`, `soft_timeout`: a duration, `"500ms"`, `"30s"`, `"5m"`, `"1h"`, `"1d"` or
///   any `Duration` expression. `eager_refresh = 0.8`, `namespace = "weather"`,
///   `tags = ["user:{id}"]` (templates over the arguments).
/// - `unless = |v: &T| ...`: do not cache this value (it is still returned).
/// - `cache_none`: for `Option<T>`, cache `None` too (by default only `Some` is cached).
///
/// # What is cached
///
/// - `Result<T, E>`: `Ok` values only; an `Err` reaches every waiter of that run and is not
///   cached. `E` must be `Clone`, because one error is shared by every waiter.
/// - `Option<T>`: `Some` values (and `None` with `cache_none`).
/// - Anything else: every value.
///
/// The cached type must be `Clone + Serialize + DeserializeOwned + Send + Sync + 'static`.
/// Arguments are moved, or for `&T` copied with `ToOwned`, into the run, which has its own task.
/// So a caller that is cancelled cancels no other caller. Methods take `&self` with
/// `Self: Clone + Send + Sync + 'static` (a handle such as an `Arc`-backed service).
///
/// # Companions
///
/// For a free function `f`, a module `f` holds `f::invalidate(&key args) -> bool` and
/// `f::refresh(args) -> Ret`. For a method `m`, they are the methods `m_invalidate` and
/// `m_refresh`.
///
/// The memoized function returns a boxed `Send` future (it is still called with `.await`).
/// That box is what lets a memoized function call itself, as `fib` does. If the body panics, the
/// panic reaches the caller, as it would without the cache.
#[proc_macro_attribute]
pub fn cached(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut opts = Options::default();
    let parser = syn::meta::parser(|meta| opts.parse(meta));
    syn::parse_macro_input!(attr with parser);
    let func = syn::parse_macro_input!(item as ItemFn);
    match expand(opts, func) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

#[derive(Default)]
struct Options {
    cache: Option<Expr>,
    key: Option<LitStr>,
    skip: Vec<Ident>,
    ttl: Option<Expr>,
    stale: Option<Expr>,
    soft_timeout: Option<Expr>,
    eager_refresh: Option<Expr>,
    tags: Vec<LitStr>,
    namespace: Option<Expr>,
    unless: Option<Expr>,
    cache_none: bool,
}

impl Options {
    fn parse(&mut self, meta: syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
        let Some(name) = meta.path.get_ident().map(Ident::to_string) else {
            return Err(meta.error(format!(
                "unknown #[cached] option; expected one of: {OPTIONS}"
            )));
        };
        match name.as_str() {
            "cache" => self.cache = Some(meta.value()?.parse()?),
            "key" => self.key = Some(meta.value()?.parse()?),
            "skip" => meta.parse_nested_meta(|m| {
                let ident = m.path.get_ident().cloned();
                self.skip
                    .push(ident.ok_or_else(|| m.error("skip(...) takes argument names"))?);
                Ok(())
            })?,
            "ttl" => self.ttl = Some(duration(meta.value()?.parse()?)?),
            "stale" => self.stale = Some(duration(meta.value()?.parse()?)?),
            "soft_timeout" => self.soft_timeout = Some(duration(meta.value()?.parse()?)?),
            "eager_refresh" => self.eager_refresh = Some(meta.value()?.parse()?),
            "tags" => {
                let list: syn::ExprArray = meta.value()?.parse()?;
                for e in list.elems {
                    match e {
                        Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(s),
                            ..
                        }) => self.tags.push(s),
                        other => {
                            return Err(syn::Error::new(
                                other.span(),
                                "tags are string templates, such as \"user:{id}\"",
                            ));
                        }
                    }
                }
            }
            "namespace" => self.namespace = Some(meta.value()?.parse()?),
            "unless" => self.unless = Some(meta.value()?.parse()?),
            "cache_none" => {
                self.cache_none = match meta.value() {
                    Ok(v) => v.parse::<LitBool>()?.value,
                    Err(_) => true,
                }
            }
            "hard_timeout" => {
                return Err(meta.error(
                    "hard_timeout is not supported by #[cached] yet: a timed-out call has no value of the function's return type to give; set it on the cache's default options, or call get_or_fetch directly",
                ));
            }
            other => {
                return Err(meta.error(format!(
                    "unknown #[cached] option `{other}`; expected one of: {OPTIONS}"
                )));
            }
        }
        Ok(())
    }
}

/// A duration option: a string such as "90s", "5m", "1h", "500ms", "1d", or any expression of
/// type `std::time::Duration`.
fn duration(expr: Expr) -> syn::Result<Expr> {
    let Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Str(s),
        ..
    }) = &expr
    else {
        return Ok(expr);
    };
    let text = s.value();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let bad = || {
        syn::Error::new(
            s.span(),
            format!(
                "`{text}` is not a duration; write a number and a unit: \"500ms\", \"30s\", \"5m\", \"1h\", \"1d\""
            ),
        )
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let millis = match unit.trim() {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => return Err(bad()),
    }
    .ok_or_else(bad)?;
    Ok(syn::parse_quote_spanned!(s.span()=> ::std::time::Duration::from_millis(#millis)))
}

/// What the function returns, which decides what is cached.
enum Returns {
    Plain,
    Option(Type),
    Result(Type),
}

fn returns(sig: &syn::Signature) -> syn::Result<(Type, Returns)> {
    let ReturnType::Type(_, ty) = &sig.output else {
        return Err(syn::Error::new(
            sig.ident.span(),
            "#[cached] needs a function that returns a value",
        ));
    };
    let ty = (**ty).clone();
    let generic = |ty: &Type, name: &str| -> Option<Vec<Type>> {
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
    };
    let kind = match (generic(&ty, "Result"), generic(&ty, "Option")) {
        (Some(args), _) if args.len() == 2 => Returns::Result(args[0].clone()),
        (_, Some(args)) if args.len() == 1 => Returns::Option(args[0].clone()),
        _ => Returns::Plain,
    };
    Ok((ty, kind))
}

/// One argument of the function.
struct Arg {
    name: Ident,
    ty: Type,
    /// `&T`: owned with `ToOwned` before the call moves into the factory.
    by_ref: bool,
    in_key: bool,
}

fn args(sig: &syn::Signature, skip: &[Ident]) -> syn::Result<(bool, Vec<Arg>)> {
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

fn expand(opts: Options, func: ItemFn) -> syn::Result<Tokens> {
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span,
            "#[cached] memoizes async fns; make this one `async fn`",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "#[cached] does not support generic functions yet",
        ));
    }
    let (ret, kind) = returns(sig)?;
    let (method, args) = args(sig, &opts.skip)?;
    let name = &sig.ident;
    let name_str = name.to_string();
    let vis = &func.vis;
    let attrs = &func.attrs;
    let body = &func.block;
    let inputs = &sig.inputs;

    let arg_names: Vec<&Ident> = args.iter().map(|a| &a.name).collect();
    let key_args: Vec<&Arg> = args.iter().filter(|a| a.in_key).collect();
    let known: Vec<String> = args.iter().map(|a| a.name.to_string()).collect();
    let key_names: Vec<String> = key_args.iter().map(|a| a.name.to_string()).collect();

    // The key, from references to the arguments (in scope under their own names).
    let key = match &opts.key {
        Some(lit) => Template::parse(lit, &known, &key_names)?.format(),
        None => {
            let parts = key_args.iter().map(|a| {
                let n = &a.name;
                quote!(.part(::std::format_args!("{:?}", #n)))
            });
            quote!(::larder::KeyBuilder::new().part(::std::concat!(::std::module_path!(), "::", #name_str)) #(#parts)* .build())
        }
    };
    let tags = opts
        .tags
        .iter()
        .map(|t| Template::parse(t, &known, &known).map(|t| t.format()))
        .collect::<syn::Result<Vec<_>>>()?;

    let mut options = quote!(::larder::EntryOptions::new());
    for (setter, value) in [
        ("ttl", &opts.ttl),
        ("stale", &opts.stale),
        ("soft_timeout", &opts.soft_timeout),
        ("eager_refresh", &opts.eager_refresh),
        ("namespace", &opts.namespace),
    ] {
        if let Some(v) = value {
            let setter = Ident::new(setter, Span::call_site());
            options = quote!(#options.#setter(#v));
        }
    }
    if !tags.is_empty() {
        options = quote!(#options.tags([#(#tags),*]));
    }

    let cache = match &opts.cache {
        Some(e) => quote!(::std::clone::Clone::clone(&#e)),
        None => quote!(::std::clone::Clone::clone(::larder::default_cache())),
    };

    // What is stored, and how a result of the body is sorted into cached or passed through.
    let unless_on = |var: Tokens| {
        opts.unless
            .as_ref()
            .map_or(quote!(false), |u| quote!((#u)(&#var)))
    };
    let unless = unless_on(quote!(__larder_v));
    let unless_whole = unless_on(quote!(__larder_r));
    let (stored, decide, hit) = match &kind {
        Returns::Result(t) => (
            quote!(#t),
            quote!(match __larder_r {
                ::std::result::Result::Ok(__larder_v) if !#unless => ::std::result::Result::Ok(__larder_v),
                __larder_other => ::std::result::Result::Err(::larder::private::Uncached(__larder_other)),
            }),
            quote!(::std::result::Result::Ok(::std::clone::Clone::clone(
                &*__larder_hit
            ))),
        ),
        Returns::Option(t) if !opts.cache_none => (
            quote!(#t),
            quote!(match __larder_r {
                ::std::option::Option::Some(__larder_v) if !#unless => ::std::result::Result::Ok(__larder_v),
                __larder_other => ::std::result::Result::Err(::larder::private::Uncached(__larder_other)),
            }),
            quote!(::std::option::Option::Some(::std::clone::Clone::clone(
                &*__larder_hit
            ))),
        ),
        Returns::Option(_) | Returns::Plain => (
            quote!(#ret),
            quote!(if #unless_whole {
                ::std::result::Result::Err(::larder::private::Uncached(__larder_r))
            } else {
                ::std::result::Result::Ok(__larder_r)
            }),
            quote!(::std::clone::Clone::clone(&*__larder_hit)),
        ),
    };

    // Owned copies of the arguments for the factory, which runs in a task of its own.
    let own: Vec<Tokens> = args
        .iter()
        .map(|a| {
            let n = &a.name;
            if a.by_ref {
                quote!(let #n = ::std::borrow::ToOwned::to_owned(#n);)
            } else {
                quote!()
            }
        })
        .collect();
    let pass: Vec<Tokens> = args
        .iter()
        .map(|a| {
            let n = &a.name;
            if a.by_ref {
                quote!(::std::borrow::Borrow::borrow(&#n))
            } else {
                quote!(#n)
            }
        })
        .collect();

    let body_fn = format_ident!("__larder_body_{}", name);
    let key_fn = format_ident!("__larder_key_{}", name);
    let invalidate_fn = format_ident!("{}_invalidate", name);
    let refresh_fn = format_ident!("{}_refresh", name);
    let key_params: Vec<Tokens> = key_args
        .iter()
        .map(|a| {
            let (n, t) = (&a.name, &a.ty);
            quote!(#n: &#t)
        })
        .collect();
    let key_call_args: Vec<Tokens> = key_args
        .iter()
        .map(|a| {
            let n = &a.name;
            quote!(&#n)
        })
        .collect();
    let all_key_refs: Vec<Tokens> = key_args
        .iter()
        .map(|a| {
            let n = &a.name;
            quote!(#n)
        })
        .collect();

    let clone_self = if method {
        quote!(let __larder_self = ::std::clone::Clone::clone(self);)
    } else {
        quote!()
    };
    let key_owner = if method { quote!(Self::) } else { quote!() };
    let body_owner = if method {
        quote!(__larder_self.)
    } else {
        quote!()
    };

    // The cache, key and options of one call, as the memoized function and `refresh` need them.
    let prelude = quote! {
        #clone_self
        let __larder_cache: ::larder::Cache = #cache;
        let __larder_key: ::std::string::String = #key_owner #key_fn(#(#key_call_args),*);
        let __larder_opts: ::larder::EntryOptions = #options;
    };
    let call = quote! {
        #prelude
        #(#own)*
    };

    let memoized = quote! {
        #(#attrs)*
        #[allow(clippy::ptr_arg)]
        #vis fn #name(#inputs) -> ::larder::private::BoxFuture<#ret> {
            #call
            ::std::boxed::Box::pin(async move {
                let __larder_result = __larder_cache
                    .get_or_fetch::<#stored, ::larder::private::Uncached<#ret>, _, _>(
                        &__larder_key,
                        __larder_opts,
                        move || async move {
                            let __larder_r: #ret = #body_owner #body_fn(#(#pass),*).await;
                            #decide
                        },
                    )
                    .await;
                match __larder_result {
                    ::std::result::Result::Ok(__larder_hit) => #hit,
                    ::std::result::Result::Err(::larder::FetchError::Factory(__larder_u)) => {
                        ::larder::private::take_uncached(__larder_u)
                    }
                    ::std::result::Result::Err(__larder_e) => {
                        ::larder::private::unrecoverable(#name_str, &__larder_key, __larder_e)
                    }
                }
            })
        }
    };

    let companions_doc_inv = format!(
        "Removes the entry `{name_str}` cached for these arguments; whether there was one."
    );
    let companions_doc_ref = format!(
        "Runs `{name_str}` now and caches what it returns (under the same rules), whatever is cached."
    );

    // The original body, under another name; for a method it stays a method so `self` works.
    let mut body_sig = sig.clone();
    body_sig.ident = body_fn.clone();
    let body_item = quote! {
        #[doc(hidden)]
        #[allow(clippy::ptr_arg, clippy::too_many_arguments)]
        #body_sig #body
    };
    let key_item = quote! {
        #[doc(hidden)]
        #[allow(clippy::ptr_arg)]
        fn #key_fn(#(#key_params),*) -> ::std::string::String {
            #key
        }
    };

    let refresh_body = quote! {
        #prelude
        let __larder_r: #ret = #body_owner #body_fn(#(#arg_names),*).await;
        let __larder_decided: ::std::result::Result<#stored, ::larder::private::Uncached<#ret>> = { #decide };
        match __larder_decided {
            ::std::result::Result::Ok(__larder_v) => {
                let __larder_hit = ::std::sync::Arc::new(__larder_v);
                let __larder_out: #ret = #hit;
                // Writing is best effort, as everywhere in the cache: the value is returned anyway.
                let _ = __larder_cache.set_with(&__larder_key, ::std::sync::Arc::unwrap_or_clone(__larder_hit), __larder_opts).await;
                __larder_out
            }
            ::std::result::Result::Err(::larder::private::Uncached(__larder_r)) => __larder_r,
        }
    };
    let invalidate_body = quote! {
        let __larder_cache: ::larder::Cache = #cache;
        let __larder_key: ::std::string::String = #key_owner #key_fn(#(#all_key_refs),*);
        match #options.get_namespace() {
            ::std::option::Option::Some(__larder_ns) => __larder_cache.namespace(__larder_ns).delete(&__larder_key).await,
            ::std::option::Option::None => __larder_cache.delete(&__larder_key).await,
        }
    };

    let out = if method {
        quote! {
            #memoized
            #body_item
            #key_item
            #[doc = #companions_doc_inv]
            #vis async fn #invalidate_fn(&self, #(#key_params),*) -> bool { #invalidate_body }
            #[doc = #companions_doc_ref]
            #[allow(clippy::ptr_arg)]
            #vis async fn #refresh_fn(#inputs) -> #ret { #refresh_body }
        }
    } else {
        // Inside the companion module, "private" means visible to the function's own module.
        let inner_vis = match vis {
            syn::Visibility::Inherited => quote!(pub(super)),
            other => quote!(#other),
        };
        let companions = format!(
            "Companions of [`{name_str}`]: invalidate or refresh one cached entry by its arguments."
        );
        quote! {
            #memoized
            #body_item
            #key_item
            #[doc = #companions]
            #[allow(non_snake_case)]
            #vis mod #name {
                #[allow(unused_imports)]
                use super::*;
                #[doc = #companions_doc_inv]
                #[allow(clippy::ptr_arg)]
                #inner_vis async fn invalidate(#(#key_params),*) -> bool { #invalidate_body }
                #[doc = #companions_doc_ref]
                #[allow(clippy::ptr_arg)]
                #inner_vis async fn refresh(#inputs) -> #ret { #refresh_body }
            }
        }
    };
    Ok(out)
}
