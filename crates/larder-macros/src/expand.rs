//! The code `#[cached]` generates.
//!
//! For a function `f` it emits:
//! - `f` itself, whose calls go through `Cache::get_or_fetch` (async fn) or
//!   `Cache::get_or_compute` (plain fn);
//! - `__larder_body_f`, the original body under another name (still a method for methods);
//! - `__larder_key_f`, the key of one call, from references to the arguments;
//! - the companions `invalidate` and `refresh` (a module `f` for a free function, methods
//!   `f_invalidate` / `f_refresh` for a method).

use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, ItemFn, Type};

use crate::options::Options;
use crate::signature::{Arg, Returns, args, returns};
use crate::template::Template;

pub(crate) fn expand(opts: Options, func: ItemFn) -> syn::Result<Tokens> {
    let sig = &func.sig;
    let is_async = sig.asyncness.is_some();
    if !is_async && let Some((option, span)) = opts.async_only().first() {
        return Err(syn::Error::new(
            *span,
            format!(
                "`{option}` needs an `async fn`: a plain fn's work runs on its caller's thread, where it can be neither stopped nor left to finish in the background"
            ),
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "#[cached] does not support generic functions yet",
        ));
    }
    let (ret, kind) = returns(sig)?;
    check_kind_options(&opts, &kind)?;
    let (method, args) = args(sig, &opts.skip)?;
    let code = Gen::new(&opts, &func, ret, kind, method, args)?;
    let memoized = if is_async {
        code.memoized_async(&opts)
    } else {
        code.memoized_sync()
    };
    let helpers = code.helpers(&func);
    let companions = code.companions(is_async);
    Ok(quote! {
        #memoized
        #helpers
        #companions
    })
}

/// Options that only make sense for some return types.
fn check_kind_options(opts: &Options, kind: &Returns) -> syn::Result<()> {
    let is_result = matches!(kind, Returns::Result(..));
    if let Some(d) = &opts.hard_timeout
        && !is_result
    {
        return Err(syn::Error::new(
            d.span,
            "`hard_timeout` needs a function returning `Result<T, E>` with `E: From<larder::Timeout>`: a call that timed out has no other value to return",
        ));
    }
    if let Some(e) = &opts.cache_err
        && !is_result
    {
        return Err(syn::Error::new(
            e.span(),
            "`cache_err` applies to functions returning `Result<T, E>`",
        ));
    }
    if let Some(span) = opts.cache_none
        && !matches!(kind, Returns::Option(_))
    {
        return Err(syn::Error::new(
            span,
            "`cache_none` applies to functions returning `Option<T>`",
        ));
    }
    Ok(())
}

/// The pieces of generated code, computed once.
struct Gen {
    vis: syn::Visibility,
    attrs: Vec<syn::Attribute>,
    inputs: syn::punctuated::Punctuated<syn::FnArg, syn::Token![,]>,
    name: Ident,
    name_str: String,
    method: bool,
    ret: Type,
    args: Vec<Arg>,
    /// The expression of the cache (a clone).
    cache: Tokens,
    /// The key of one call, from the arguments in scope.
    key: Tokens,
    /// The `EntryOptions` of one call.
    options: Tokens,
    /// The type stored in the cache.
    stored: Tokens,
    /// Sorts a result `__larder_r` into `Ok(stored)` or `Err(Uncached(result))`.
    decide: Tokens,
    /// Turns a cached `__larder_hit: Arc<stored>` into the return type.
    hit: Tokens,
    /// Turns a `FetchError::Timeout(__larder_d)` into the function's error, for `Result` fns.
    timeout_arm: Tokens,
    /// `E` of `Result<T, E>`, when the function returns one.
    err: Option<Type>,
    body_fn: Ident,
    key_fn: Ident,
}

impl Gen {
    fn new(
        opts: &Options,
        func: &ItemFn,
        ret: Type,
        kind: Returns,
        method: bool,
        args: Vec<Arg>,
    ) -> syn::Result<Self> {
        let sig = &func.sig;
        let name = sig.ident.clone();
        let name_str = name.to_string();
        let known: Vec<String> = args.iter().map(|a| a.name.to_string()).collect();
        let key_names: Vec<String> = args
            .iter()
            .filter(|a| a.in_key)
            .map(|a| a.name.to_string())
            .collect();

        let key = match &opts.key {
            Some(lit) => Template::parse(lit, &known, &key_names)?.format(),
            None => {
                let parts = args.iter().filter(|a| a.in_key).map(|a| {
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
            ("ttl", opts.ttl.as_ref().map(|d| &d.expr)),
            ("stale", opts.stale.as_ref().map(|d| &d.expr)),
            ("soft_timeout", opts.soft_timeout.as_ref().map(|d| &d.expr)),
            ("hard_timeout", opts.hard_timeout.as_ref().map(|d| &d.expr)),
            ("eager_refresh", opts.eager_refresh.as_ref()),
            ("namespace", opts.namespace.as_ref()),
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

        let (stored, decide, hit) = sorting(opts, &kind, &ret);
        let err = match &kind {
            Returns::Result(_, e) => Some(e.clone()),
            _ => None,
        };
        let timeout_arm = match &err {
            Some(e) => quote! {
                ::std::result::Result::Err(::larder::FetchError::Timeout(__larder_d)) => {
                    #[allow(unused_imports)]
                    use ::larder::__private::{TimeoutUnconvertible as _, TimeoutViaFrom as _};
                    // The borrow chooses `From<Timeout>` where `E` has it (autoref specialization).
                    #[allow(clippy::needless_borrow)]
                    match (&::larder::__private::TimeoutInto::<#e>::new())
                        .timeout_error(::larder::Timeout(__larder_d))
                    {
                        ::std::option::Option::Some(__larder_e) => ::std::result::Result::Err(__larder_e),
                        ::std::option::Option::None => {
                            ::larder::__private::timed_out(#name_str, &__larder_key, __larder_d)
                        }
                    }
                }
            },
            None => quote!(),
        };

        Ok(Self {
            vis: func.vis.clone(),
            attrs: func.attrs.clone(),
            inputs: sig.inputs.clone(),
            body_fn: format_ident!("__larder_body_{}", name),
            key_fn: format_ident!("__larder_key_{}", name),
            name,
            name_str,
            method,
            ret,
            args,
            cache,
            key,
            options,
            stored,
            decide,
            hit,
            timeout_arm,
            err,
        })
    }

    /// `Self::` for a method's helpers, nothing for a free function's.
    fn key_owner(&self) -> Tokens {
        if self.method {
            quote!(Self::)
        } else {
            quote!()
        }
    }

    /// The cache, key and options of one call.
    fn prelude(&self) -> Tokens {
        let (cache, options, key_fn) = (&self.cache, &self.options, &self.key_fn);
        let key_owner = self.key_owner();
        let key_args = self.args.iter().filter(|a| a.in_key).map(|a| {
            let n = &a.name;
            quote!(&#n)
        });
        quote! {
            let __larder_cache: ::larder::Cache = #cache;
            let __larder_key: ::std::string::String = #key_owner #key_fn(#(#key_args),*);
            let __larder_opts: ::larder::EntryOptions = #options;
        }
    }

    /// What a call returns from `__larder_result`, the cache's answer.
    fn outcome(&self) -> Tokens {
        let (hit, timeout_arm, name_str) = (&self.hit, &self.timeout_arm, &self.name_str);
        quote! {
            match __larder_result {
                ::std::result::Result::Ok(__larder_hit) => #hit,
                ::std::result::Result::Err(::larder::FetchError::Factory(__larder_u)) => {
                    ::larder::__private::take_uncached(__larder_u)
                }
                #timeout_arm
                ::std::result::Result::Err(__larder_e) => {
                    ::larder::__private::unrecoverable(#name_str, &__larder_key, __larder_e)
                }
            }
        }
    }

    /// An async fn: a boxed `Send` future (the box lets it call itself) over `get_or_fetch`.
    /// Arguments move into the run, which has a task of its own; `&T` ones are first owned.
    fn memoized_async(&self, opts: &Options) -> Tokens {
        let (vis, attrs, inputs, name, ret) =
            (&self.vis, &self.attrs, &self.inputs, &self.name, &self.ret);
        let (stored, decide, body_fn) = (&self.stored, &self.decide, &self.body_fn);
        let prelude = self.prelude();
        let outcome = self.outcome();
        let clone_self = if self.method {
            quote!(let __larder_self = ::std::clone::Clone::clone(self);)
        } else {
            quote!()
        };
        let owner = if self.method {
            quote!(__larder_self.)
        } else {
            quote!()
        };
        let own = self.args.iter().filter(|a| a.by_ref).map(|a| {
            let n = &a.name;
            quote!(let #n = ::std::borrow::ToOwned::to_owned(#n);)
        });
        let pass = self.args.iter().map(|a| {
            let n = &a.name;
            if a.by_ref {
                quote!(::std::borrow::Borrow::borrow(&#n))
            } else {
                quote!(#n)
            }
        });
        // With `hard_timeout` the error type must take a `Timeout`: say so at the option.
        let needs_from_timeout = match (&opts.hard_timeout, &self.err) {
            (Some(d), Some(e)) => quote_spanned! {d.span=>
                ::larder::__private::needs_from_timeout::<#e>();
            },
            _ => quote!(),
        };
        quote! {
            #(#attrs)*
            #[allow(clippy::ptr_arg)]
            #vis fn #name(#inputs) -> ::larder::__private::BoxFuture<#ret> {
                #needs_from_timeout
                #clone_self
                #prelude
                #(#own)*
                ::std::boxed::Box::pin(async move {
                    let __larder_result = __larder_cache
                        .get_or_fetch_with::<#stored, ::larder::__private::Uncached<#ret>, _, _>(
                            &__larder_key,
                            __larder_opts,
                            move || async move {
                                let __larder_r: #ret = #owner #body_fn(#(#pass),*).await;
                                #decide
                            },
                        )
                        .await;
                    #outcome
                })
            }
        }
    }

    /// A plain fn: `get_or_compute` runs the body on the caller's thread, borrowing its
    /// arguments; the memory tier holds the result.
    fn memoized_sync(&self) -> Tokens {
        let (vis, attrs, inputs, name, ret) =
            (&self.vis, &self.attrs, &self.inputs, &self.name, &self.ret);
        let (stored, decide) = (&self.stored, &self.decide);
        let prelude = self.prelude();
        let outcome = self.outcome();
        let call = self.sync_body_call();
        quote! {
            #(#attrs)*
            #[allow(clippy::ptr_arg)]
            #vis fn #name(#inputs) -> #ret {
                #prelude
                let __larder_result = __larder_cache
                    .get_or_compute_with::<#stored, ::larder::__private::Uncached<#ret>, _>(
                        &__larder_key,
                        __larder_opts,
                        || {
                            let __larder_r: #ret = #call;
                            #decide
                        },
                    );
                #outcome
            }
        }
    }

    /// A call of the original body of a plain fn, with the arguments as they are.
    fn sync_body_call(&self) -> Tokens {
        let body_fn = &self.body_fn;
        let names = self.args.iter().map(|a| &a.name);
        if self.method {
            quote!(self.#body_fn(#(#names),*))
        } else {
            quote!(#body_fn(#(#names),*))
        }
    }

    /// The original body under another name, and the key of one call.
    fn helpers(&self, func: &ItemFn) -> Tokens {
        let mut body_sig = func.sig.clone();
        body_sig.ident = self.body_fn.clone();
        let body = &func.block;
        let (key_fn, key) = (&self.key_fn, &self.key);
        let key_params = self.key_params();
        quote! {
            #[doc(hidden)]
            #[allow(clippy::ptr_arg, clippy::too_many_arguments)]
            #body_sig #body

            #[doc(hidden)]
            #[allow(clippy::ptr_arg)]
            fn #key_fn(#(#key_params),*) -> ::std::string::String {
                #key
            }
        }
    }

    /// `name: &Type` for each argument in the key.
    fn key_params(&self) -> Vec<Tokens> {
        self.args
            .iter()
            .filter(|a| a.in_key)
            .map(|a| {
                let (n, t) = (&a.name, &a.ty);
                quote!(#n: &#t)
            })
            .collect()
    }

    /// `invalidate` and `refresh`: a module for a free function, methods for a method.
    fn companions(&self, is_async: bool) -> Tokens {
        let (vis, inputs, ret, name_str) = (&self.vis, &self.inputs, &self.ret, &self.name_str);
        let (cache, options, key_fn) = (&self.cache, &self.options, &self.key_fn);
        let (stored, decide, hit, body_fn) = (&self.stored, &self.decide, &self.hit, &self.body_fn);
        let key_owner = self.key_owner();
        let key_params = self.key_params();
        let key_refs = self.args.iter().filter(|a| a.in_key).map(|a| &a.name);
        let prelude = self.prelude();
        let doc_inv = format!(
            "Removes the entry `{name_str}` cached for these arguments; whether there was one."
        );
        let doc_ref = format!(
            "Runs `{name_str}` now and caches what it returns (under the same rules), whatever is cached."
        );
        let names = self.args.iter().map(|a| &a.name);
        let (asyncness, await_, run, remove, store) = if is_async {
            let owner = if self.method { quote!(self.) } else { quote!() };
            (
                quote!(async),
                quote!(.await),
                quote!(#owner #body_fn(#(#names),*).await),
                quote!(::larder::Cache::delete),
                // Writing is best effort, as everywhere in the cache: the value is returned anyway.
                quote!(let _ = __larder_cache.set_with(&__larder_key, __larder_v, __larder_opts).await;),
            )
        } else {
            let call = self.sync_body_call();
            (
                quote!(),
                quote!(),
                call,
                quote!(::larder::__private::forget),
                quote!(::larder::__private::remember(&__larder_cache, &__larder_key, __larder_v, __larder_opts);),
            )
        };
        let invalidate_body = quote! {
            let __larder_cache: ::larder::Cache = #cache;
            let __larder_key: ::std::string::String = #key_owner #key_fn(#(#key_refs),*);
            match #options.namespace_ref() {
                ::std::option::Option::Some(__larder_ns) => #remove(&__larder_cache.namespace(__larder_ns), &__larder_key) #await_,
                ::std::option::Option::None => #remove(&__larder_cache, &__larder_key) #await_,
            }
        };
        let refresh_body = quote! {
            #prelude
            let __larder_r: #ret = #run;
            let __larder_decided: ::std::result::Result<#stored, ::larder::__private::Uncached<#ret>> = { #decide };
            match __larder_decided {
                ::std::result::Result::Ok(__larder_v) => {
                    let __larder_hit = ::std::sync::Arc::new(__larder_v);
                    let __larder_out: #ret = #hit;
                    // With an `Arc<T>` return the caller keeps one reference: T is cloned once
                    // for the store (a refresh, not the hit path).
                    let __larder_v = ::std::sync::Arc::unwrap_or_clone(__larder_hit);
                    #store
                    __larder_out
                }
                ::std::result::Result::Err(::larder::__private::Uncached(__larder_r)) => __larder_r,
            }
        };
        if self.method {
            let invalidate_fn = format_ident!("{}_invalidate", self.name);
            let refresh_fn = format_ident!("{}_refresh", self.name);
            return quote! {
                #[doc = #doc_inv]
                #vis #asyncness fn #invalidate_fn(&self, #(#key_params),*) -> bool { #invalidate_body }
                #[doc = #doc_ref]
                #[allow(clippy::ptr_arg)]
                #vis #asyncness fn #refresh_fn(#inputs) -> #ret { #refresh_body }
            };
        }
        // Inside the companion module, "private" means visible to the function's own module.
        let inner_vis = match vis {
            syn::Visibility::Inherited => quote!(pub(super)),
            other => quote!(#other),
        };
        let name = &self.name;
        let doc_mod = format!(
            "Companions of [`{name_str}`]: invalidate or refresh one cached entry by its arguments."
        );
        quote! {
            #[doc = #doc_mod]
            #[allow(non_snake_case)]
            #vis mod #name {
                #[allow(unused_imports)]
                use super::*;
                #[doc = #doc_inv]
                #[allow(clippy::ptr_arg)]
                #inner_vis #asyncness fn invalidate(#(#key_params),*) -> bool { #invalidate_body }
                #[doc = #doc_ref]
                #[allow(clippy::ptr_arg)]
                #inner_vis #asyncness fn refresh(#inputs) -> #ret { #refresh_body }
            }
        }
    }
}

/// What is stored, how a result is sorted into cached or passed through, and how a cached value
/// becomes the return type again.
fn sorting(opts: &Options, kind: &Returns, ret: &Type) -> (Tokens, Tokens, Tokens) {
    let unless_on = |var: Tokens| {
        opts.unless
            .as_ref()
            .map_or(quote!(false), |u| quote!((#u)(&#var)))
    };
    let unless = unless_on(quote!(__larder_v));
    let uncached = quote!(::std::result::Result::Err(::larder::__private::Uncached(
        __larder_other
    )));
    // What is stored for a value of type `t`, how the body's value becomes it, and how a hit
    // (`__larder_hit: Arc<stored>`) becomes a value again: an `Arc<T>` is stored as `T` and handed
    // out as the cache's own `Arc`; anything else is stored as itself and cloned out of it.
    let value_of = |t: &Type| match crate::signature::arc_inner(t) {
        Some(inner) => (
            quote!(#inner),
            quote!(::std::sync::Arc::unwrap_or_clone(__larder_v)),
            quote!(::std::clone::Clone::clone(&__larder_hit)),
        ),
        None => (
            quote!(#t),
            quote!(__larder_v),
            quote!(::std::clone::Clone::clone(&*__larder_hit)),
        ),
    };
    match kind {
        Returns::Result(t, e) => match &opts.cache_err {
            // The whole `Result` is stored, so chosen errors are served from the cache too.
            Some(cache_err) => (
                quote!(::std::result::Result<#t, #e>),
                quote!(match __larder_r {
                    ::std::result::Result::Ok(__larder_v) if !#unless => {
                        ::std::result::Result::Ok(::std::result::Result::Ok(__larder_v))
                    }
                    ::std::result::Result::Err(__larder_e) if (#cache_err)(&__larder_e) => {
                        ::std::result::Result::Ok(::std::result::Result::Err(__larder_e))
                    }
                    __larder_other => #uncached,
                }),
                quote!(::std::clone::Clone::clone(&*__larder_hit)),
            ),
            None => {
                let (stored, store, out) = value_of(t);
                (
                    stored,
                    quote!(match __larder_r {
                        ::std::result::Result::Ok(__larder_v) if !#unless => ::std::result::Result::Ok(#store),
                        __larder_other => #uncached,
                    }),
                    quote!(::std::result::Result::Ok(#out)),
                )
            }
        },
        Returns::Option(t) if opts.cache_none.is_none() => {
            let (stored, store, out) = value_of(t);
            (
                stored,
                quote!(match __larder_r {
                    ::std::option::Option::Some(__larder_v) if !#unless => ::std::result::Result::Ok(#store),
                    __larder_other => #uncached,
                }),
                quote!(::std::option::Option::Some(#out)),
            )
        }
        Returns::Option(_) | Returns::Plain => {
            let unless_whole = unless_on(quote!(__larder_r));
            let (stored, store, out) = match kind {
                Returns::Plain => value_of(ret),
                _ => (
                    quote!(#ret),
                    quote!(__larder_v),
                    quote!(::std::clone::Clone::clone(&*__larder_hit)),
                ),
            };
            (
                stored,
                quote!(if #unless_whole {
                    ::std::result::Result::Err(::larder::__private::Uncached(__larder_r))
                } else {
                    let __larder_v = __larder_r;
                    ::std::result::Result::Ok(#store)
                }),
                out,
            )
        }
    }
}
