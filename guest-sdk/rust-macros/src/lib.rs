//! The macros of `sluice-sdk`: `#[transform]` turns one function over a
//! batch into a Sluice transform plugin, and `__world_bindings!` generates a
//! plugin's exports inside the plugin crate.

use proc_macro::TokenStream;
use quote::quote;
use syn::{ItemFn, LitStr, parse_macro_input};

/// The plugin contract, embedded so a plugin crate needs no path to it.
const WIT: &str = include_str!("../../../wit/plugin.wit");

/// Generate the bindings of one world (`"transform"` or `"aggregate"`) as a
/// module `__sluice_bindings` at the call site. Its shared types and host
/// imports are the SDK's own, so only the world's exports are generated
/// here, and a component carries exactly the exports it implements.
#[doc(hidden)]
#[proc_macro]
pub fn __world_bindings(input: TokenStream) -> TokenStream {
    let world = parse_macro_input!(input as LitStr);
    if !matches!(world.value().as_str(), "transform" | "aggregate") {
        return syn::Error::new_spanned(world, "expected \"transform\" or \"aggregate\"")
            .to_compile_error()
            .into();
    }
    quote! {
        #[doc(hidden)]
        mod __sluice_bindings {
            ::sluice_sdk::__private::wit_bindgen::generate!({
                inline: #WIT,
                world: #world,
                runtime_path: "::sluice_sdk::__private::wit_bindgen::rt",
                with: {
                    "sluice:plugin/types@0.2.0": ::sluice_sdk::bindings::sluice::plugin::types,
                    "sluice:plugin/host@0.2.0": ::sluice_sdk::bindings::sluice::plugin::host,
                },
            });
        }
    }
    .into()
}

/// Export a function as the plugin's transform.
///
/// The function takes a `RecordBatch` and optionally `&Config`, and returns
/// `Result<T>` where `T: Into<Output>` (a `RecordBatch` or an `Output` with
/// routed rows). The function itself is left as written, so native tests
/// call it directly.
///
/// `#[transform(reads = ["price"])]` declares the only columns the function
/// reads: only they cross into the plugin (see `Transform::reads`).
#[proc_macro_attribute]
pub fn transform(attr: TokenStream, item: TokenStream) -> TokenStream {
    let reads = match reads(attr) {
        Ok(reads) => reads,
        Err(error) => return error.to_compile_error().into(),
    };
    let function = parse_macro_input!(item as ItemFn);
    let name = &function.sig.ident;
    let call = match function.sig.inputs.len() {
        1 => quote! { #name(batch) },
        2 => quote! { #name(batch, &self.0) },
        _ => {
            return syn::Error::new_spanned(
                &function.sig.inputs,
                "a #[transform] function takes `batch: RecordBatch` and optionally `config: &Config`",
            )
            .to_compile_error()
            .into();
        }
    };
    quote! {
        #function

        #[doc(hidden)]
        #[allow(dead_code)]
        struct __SluiceTransformFn(::sluice_sdk::Config);

        impl ::sluice_sdk::Transform for __SluiceTransformFn {
            fn init(config: &::sluice_sdk::Config) -> ::sluice_sdk::Result<Self> {
                Ok(__SluiceTransformFn(config.clone()))
            }

            #reads

            fn process(
                &mut self,
                batch: ::sluice_sdk::RecordBatch,
            ) -> ::sluice_sdk::Result<::sluice_sdk::Output> {
                #call.map(::core::convert::Into::into)
            }
        }

        ::sluice_sdk::export_transform!(__SluiceTransformFn);
    }
    .into()
}

/// The `reads` method of `#[transform(reads = [...])]`; nothing without
/// arguments.
fn reads(attr: TokenStream) -> syn::Result<proc_macro2::TokenStream> {
    if attr.is_empty() {
        return Ok(quote! {});
    }
    let argument: syn::MetaNameValue = syn::parse(attr)?;
    let expected = "#[transform] takes `reads = [\"column\", ...]`";
    if !argument.path.is_ident("reads") {
        return Err(syn::Error::new_spanned(&argument.path, expected));
    }
    let syn::Expr::Array(array) = &argument.value else {
        return Err(syn::Error::new_spanned(&argument.value, expected));
    };
    let names = array
        .elems
        .iter()
        .map(|element| match element {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(name),
                ..
            }) => Ok(name.clone()),
            other => Err(syn::Error::new_spanned(other, expected)),
        })
        .collect::<syn::Result<Vec<LitStr>>>()?;
    Ok(quote! {
        fn reads(&self) -> ::core::option::Option<::std::vec::Vec<::std::string::String>> {
            ::core::option::Option::Some(::std::vec![#(::std::string::String::from(#names)),*])
        }
    })
}
