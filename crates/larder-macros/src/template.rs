//! Key and tag templates: `"weather:{city}"`, with `{{` and `}}` for literal braces. Every
//! placeholder must name an argument, checked at compile time.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::LitStr;

pub(crate) struct Template {
    /// The `format!` string, with each placeholder emptied to `{}`.
    format: String,
    args: Vec<String>,
}

impl Template {
    /// Parses `lit`; placeholders must be in `allowed` (those not in it but in `known` are
    /// arguments left out of the key with `skip`).
    pub fn parse(lit: &LitStr, known: &[String], allowed: &[String]) -> syn::Result<Self> {
        let text = lit.value();
        let err = |msg: String| syn::Error::new(lit.span(), msg);
        let mut format = String::with_capacity(text.len());
        let mut args = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    format.push_str("{{");
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    format.push_str("}}");
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => {
                                return Err(err(format!("unclosed `{{` in template \"{text}\"")));
                            }
                        }
                    }
                    let name = name.trim().to_owned();
                    if name.is_empty() {
                        return Err(err(format!(
                            "empty `{{}}` in template \"{text}\": name an argument, as in {{city}}"
                        )));
                    }
                    if !allowed.contains(&name) {
                        let why = if known.contains(&name) {
                            format!("`{name}` is skipped, so it cannot be part of the key")
                        } else {
                            format!(
                                "`{name}` is not an argument of this function (arguments: {})",
                                known.join(", ")
                            )
                        };
                        return Err(err(format!("template \"{text}\": {why}")));
                    }
                    format.push_str("{}");
                    args.push(name);
                }
                '}' => {
                    return Err(err(format!(
                        "unmatched `}}` in template \"{text}\" (write `}}}}` for a literal brace)"
                    )));
                }
                c => format.push(c),
            }
        }
        Ok(Self { format, args })
    }

    /// A `String` expression formatting the arguments (in scope under their names) with Display.
    pub fn format(&self) -> TokenStream {
        let format = &self.format;
        let args = self.args.iter().map(|a| format_ident!("{}", a));
        quote!(::std::format!(#format, #(#args),*))
    }
}
