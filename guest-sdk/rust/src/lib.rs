#![doc = include_str!("../README.md")]

#[doc(hidden)]
pub mod __private;
mod config;
mod error;
mod host;
mod output;

pub use arrow_array::{self, ArrayRef, RecordBatch};
pub use arrow_buffer;
pub use arrow_schema;
pub use config::Config;
pub use error::{Error, ErrorKind, Result};
pub use host::{Level, counter_add, log};
pub use output::Output;
pub use sluice_sdk_macros::transform;

/// Bindings generated from `wit/plugin.wit`; plugin authors never need them.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "transform",
        pub_export_macro: true,
        default_bindings_module: "sluice_sdk::bindings",
    });
}

/// A transform with its own state. `#[transform]` implements this for a
/// plain function; implement it yourself for state that must survive
/// checkpoints and hot swaps, then call [`export_transform!`].
pub trait Transform: Sized + 'static {
    /// Build the plugin from the job file's configuration.
    fn init(config: &Config) -> Result<Self>;

    /// Transform one batch.
    fn process(&mut self, batch: RecordBatch) -> Result<Output>;

    /// The state to carry through a checkpoint or hot swap; `None` when the
    /// plugin is stateless.
    fn snapshot(&self) -> Option<Vec<u8>> {
        None
    }

    /// Restore state written by [`Transform::snapshot`].
    fn restore(&mut self, _state: &[u8]) -> Result<()> {
        Ok(())
    }
}

/// Export a [`Transform`] implementation as the plugin's entry points.
#[macro_export]
macro_rules! export_transform {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __SluiceGuest;

            impl $crate::__private::TransformerGuest for __SluiceGuest {
                fn init(
                    config: $crate::__private::WitConfig,
                ) -> ::core::result::Result<(), $crate::__private::WitError> {
                    $crate::__private::init::<$plugin>(config)
                }

                fn process(
                    input: $crate::__private::WitBatch,
                ) -> ::core::result::Result<
                    $crate::__private::WitTransformed,
                    $crate::__private::WitError,
                > {
                    $crate::__private::process::<$plugin>(input)
                }

                fn snapshot() -> ::core::option::Option<::std::vec::Vec<u8>> {
                    $crate::__private::snapshot::<$plugin>()
                }

                fn restore(
                    state: ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<(), $crate::__private::WitError> {
                    $crate::__private::restore::<$plugin>(state)
                }
            }

    $crate::bindings::export!(__SluiceGuest with_types_in $crate::bindings);
        };
    };
}
