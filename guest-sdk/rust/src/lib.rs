#![doc = include_str!("../README.md")]

#[doc(hidden)]
pub mod __private;
mod aggregate;
mod config;
mod error;
mod host;
mod output;

pub use aggregate::{Aggregate, Finished, StateCodec};
pub use arrow_array::{self, ArrayRef, RecordBatch};
pub use arrow_buffer;
pub use arrow_schema;
pub use config::Config;
pub use error::{Error, ErrorKind, Result};
pub use host::{Level, counter_add, log};
pub use output::{Output, OutputColumn};
pub use sluice_sdk_macros::transform;

/// The contract's shared types and host imports, generated from
/// `wit/plugin.wit`; plugin authors never need them. Each plugin generates
/// its world's exports itself (see [`export_transform!`]).
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "imports",
    });
}

/// A transform with its own state. `#[transform]` implements this for a
/// plain function; implement it yourself for state that must survive
/// checkpoints and hot swaps, then call [`export_transform!`].
pub trait Transform: Sized + 'static {
    /// Build the plugin from the job file's configuration.
    fn init(config: &Config) -> Result<Self>;

    /// The input columns [`Transform::process`] reads, by name; `None`
    /// (the default) for every column. Only these cross into the plugin;
    /// asked once, after `init`. Columns it does not read can still be in
    /// the output, unchanged ([`OutputColumn::Input`], [`OutputColumn::Others`]).
    fn reads(&self) -> Option<Vec<String>> {
        None
    }

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
            $crate::__private::world_bindings!("transform");

            struct __SluiceGuest;

            impl __sluice_bindings::exports::sluice::plugin::transformer::Guest for __SluiceGuest {
                fn init(
                    config: $crate::__private::WitConfig,
                ) -> ::core::result::Result<(), $crate::__private::WitError> {
                    $crate::__private::init::<$plugin>(config)
                }

                fn reads() -> ::core::option::Option<::std::vec::Vec<::std::string::String>> {
                    $crate::__private::reads::<$plugin>()
                }

                fn process(
                    input: $crate::__private::WitBatch,
                ) -> ::core::result::Result<
                    __sluice_bindings::exports::sluice::plugin::transformer::Output,
                    $crate::__private::WitError,
                > {
                    use __sluice_bindings::exports::sluice::plugin::transformer::{
                        Output, OutputColumn,
                    };
                    let output = $crate::__private::process::<$plugin>(input)?;
                    let columns = output
                        .columns
                        .into_iter()
                        .map(|source| match source {
                            $crate::__private::OutputSource::Made(i) => OutputColumn::Made(i),
                            $crate::__private::OutputSource::Input(name) => {
                                OutputColumn::Input(name)
                            }
                            $crate::__private::OutputSource::Others => OutputColumn::Others,
                            $crate::__private::OutputSource::InPlace => OutputColumn::InPlace,
                        })
                        .collect();
                    Ok(Output {
                        batch: output.batch,
                        rows: output.rows,
                        columns,
                        routed: output.routed,
                    })
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

    __sluice_bindings::export!(__SluiceGuest with_types_in __sluice_bindings);
        };
    };
}

/// Export an [`Aggregate`] implementation as the plugin's entry points.
#[macro_export]
macro_rules! export_aggregate {
    ($aggregate:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            $crate::__private::world_bindings!("aggregate");

            use __sluice_bindings::exports::sluice::plugin::aggregator;

            struct __SluiceGuest;

            impl aggregator::Guest for __SluiceGuest {
                fn init(
                    config: $crate::__private::WitConfig,
                ) -> ::core::result::Result<(), $crate::__private::WitError> {
                    $crate::__private::aggregate_init::<$aggregate>(config)
                }

                fn update(
                    states: ::std::vec::Vec<::std::vec::Vec<u8>>,
                    input: $crate::__private::WitBatch,
                    group_ids: ::std::vec::Vec<u32>,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<::std::vec::Vec<u8>>,
                    $crate::__private::WitError,
                > {
                    $crate::__private::aggregate_update::<$aggregate>(states, input, group_ids)
                }

                fn merge(
                    left: ::std::vec::Vec<::std::vec::Vec<u8>>,
                    right: ::std::vec::Vec<::std::vec::Vec<u8>>,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<::std::vec::Vec<u8>>,
                    $crate::__private::WitError,
                > {
                    $crate::__private::aggregate_merge::<$aggregate>(left, right)
                }

                fn finish(
                    states: ::std::vec::Vec<::std::vec::Vec<u8>>,
                ) -> ::core::result::Result<aggregator::Finished, $crate::__private::WitError>
                {
                    let (batch, groups) =
                        $crate::__private::aggregate_finish::<$aggregate>(states)?;
                    Ok(aggregator::Finished { batch, groups })
                }
            }

    __sluice_bindings::export!(__SluiceGuest with_types_in __sluice_bindings);
        };
    };
}
