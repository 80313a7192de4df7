//! The options of `#[cached(...)]`, parsed and checked.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Expr, Ident, LitBool, LitStr};

pub(crate) const OPTIONS: &str = "cache, key, skip, ttl, stale, soft_timeout, hard_timeout, eager_refresh, tags, namespace, unless, cache_none, cache_err";

/// A duration option: the expression that builds it, and where it was written.
pub(crate) struct Duration {
    pub expr: Expr,
    pub span: Span,
}

#[derive(Default)]
pub(crate) struct Options {
    pub cache: Option<Expr>,
    pub key: Option<LitStr>,
    pub skip: Vec<Ident>,
    pub ttl: Option<Duration>,
    pub stale: Option<Duration>,
    pub soft_timeout: Option<Duration>,
    pub hard_timeout: Option<Duration>,
    pub eager_refresh: Option<Expr>,
    pub tags: Vec<LitStr>,
    pub namespace: Option<Expr>,
    pub unless: Option<Expr>,
    /// `cache_none`, with where it was written.
    pub cache_none: Option<Span>,
    pub cache_err: Option<Expr>,
}

impl Options {
    pub fn parse(&mut self, meta: syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
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
            "hard_timeout" => self.hard_timeout = Some(duration(meta.value()?.parse()?)?),
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
                let span = meta.path.span();
                let on = match meta.value() {
                    Ok(v) => v.parse::<LitBool>()?.value,
                    Err(_) => true,
                };
                self.cache_none = on.then_some(span);
            }
            "cache_err" => self.cache_err = Some(meta.value()?.parse()?),
            other => {
                return Err(meta.error(format!(
                    "unknown #[cached] option `{other}`; expected one of: {OPTIONS}"
                )));
            }
        }
        Ok(())
    }

    /// The options that need an async fn, with their spans: a plain fn's work runs on its
    /// caller's thread, where it can be neither stopped nor left to finish in the background.
    pub fn async_only(&self) -> Vec<(&'static str, Span)> {
        let mut found = Vec::new();
        if let Some(d) = &self.soft_timeout {
            found.push(("soft_timeout", d.span));
        }
        if let Some(d) = &self.hard_timeout {
            found.push(("hard_timeout", d.span));
        }
        if let Some(e) = &self.eager_refresh {
            found.push(("eager_refresh", e.span()));
        }
        found
    }
}

/// A duration option: a string such as "90s", "5m", "1h", "500ms", "1d", or any expression of
/// type `std::time::Duration`.
fn duration(expr: Expr) -> syn::Result<Duration> {
    let span = expr.span();
    let Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Str(s),
        ..
    }) = &expr
    else {
        return Ok(Duration { expr, span });
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
    Ok(Duration {
        expr: syn::parse_quote_spanned!(s.span()=> ::std::time::Duration::from_millis(#millis)),
        span,
    })
}
