//! The `#[transform]` attribute of `sluice-sdk`: turns one function over a
//! batch into a Sluice transform plugin.

use proc_macro::TokenStream;
use quote::quote;
use syn::{ItemFn, parse_macro_input};

/// Export a function as the plugin's transform.
///
/// The function takes a `RecordBatch` and optionally `&Config`, and returns
/// `Result<T>` where `T: Into<Output>` (a `RecordBatch` or an `Output` with
/// routed rows). The function itself is left as written, so native tests
/// call it directly.
#[proc_macro_attribute]
pub fn transform(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = proc_macro2::TokenStream::from(attr);
        return syn::Error::new_spanned(attr, "#[transform] takes no arguments")
            .to_compile_error()
            .into();
    }
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
