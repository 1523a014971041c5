//! The pure decide/apply contract every aggregate implements, and the adapter to cqrs-es.

use cqrs_es::Aggregate;

/// A pure command handler: the business rules of one aggregate.
///
/// `decide` must not mutate state; the caller applies the returned events (through
/// `Aggregate::apply`) only once they are durably committed. That ordering is what lets an
/// actor keep its state in memory: a rejected command or a failed commit leaves the cached
/// state untouched.
pub trait Decider: Aggregate {
    /// Turns a command into the events it causes, or the rule it breaks.
    fn decide(&self, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;
}

/// Implements `cqrs_es::Aggregate` for a type that implements [`Decider`] plus an inherent
/// `fold(&mut self, event)`: `handle` is `decide` followed by writing each event to the sink.
#[macro_export]
macro_rules! impl_aggregate {
    ($agg:ty, $type_name:literal, $cmd:ty, $evt:ty, $err:ty) => {
        impl cqrs_es::Aggregate for $agg {
            const TYPE: &'static str = $type_name;
            type Command = $cmd;
            type Event = $evt;
            type Error = $err;
            type Services = ();

            async fn handle(
                &mut self,
                command: Self::Command,
                _services: &Self::Services,
                sink: &cqrs_es::event_sink::EventSink<Self>,
            ) -> Result<(), Self::Error> {
                let events = $crate::Decider::decide(self, command)?;
                for event in events {
                    sink.write(event, self).await;
                }
                Ok(())
            }

            fn apply(&mut self, event: Self::Event) {
                self.fold(event)
            }
        }
    };
}
