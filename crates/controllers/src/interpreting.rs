//! The resource interpreter of a controller process, with the ResourceInterpreterCustomizations
//! on the control plane kept in force (reloaded on every change, as upstream's config
//! manager).

use std::sync::Arc;

use futures::StreamExt;
use interpreter::Interpreter;
use karmada_api::config::ResourceInterpreterCustomization;

use crate::shared::{Change, Watched};

pub struct Interpreting {
    pub interpreter: Arc<Interpreter>,
    /// How many times customizations were loaded.
    loaded: tokio::sync::watch::Receiver<u64>,
    _customizations: Arc<Watched<ResourceInterpreterCustomization>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Interpreting {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Interpreting {
    /// Watches the customizations and keeps them loaded into a new interpreter.
    pub fn start(client: &kube::Client) -> Arc<Self> {
        let customizations: Arc<Watched<ResourceInterpreterCustomization>> =
            Watched::start(kube::Api::all(client.clone()), Default::default());
        let interpreter = Arc::new(Interpreter::default());
        let (loaded_tx, loaded) = tokio::sync::watch::channel(0u64);
        let mut changes = customizations.subscribe();
        let store = customizations.store();
        let into = Arc::clone(&interpreter);
        let task = tokio::spawn(async move {
            while let Some(change) = changes.next().await {
                // A (re)list is loaded once complete.
                if matches!(change, Change::Relisting | Change::Listed(_)) {
                    continue;
                }
                let all = store.state();
                into.load(all.iter().map(|c| c.as_ref()));
                loaded_tx.send_modify(|n| *n += 1);
            }
        });
        Arc::new(Interpreting { interpreter, loaded, _customizations: customizations, task })
    }

    /// Waits until the customizations on the control plane are loaded.
    pub async fn ready(&self) {
        let _ = self.loaded.clone().wait_for(|n| *n > 0).await;
    }

    /// One item whenever the customizations in force change (from now on).
    pub fn changes(&self) -> impl futures::Stream<Item = ()> + Send + 'static {
        let mut rx = self.loaded.clone();
        rx.mark_unchanged();
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.changed().await.ok().map(|()| ((), rx)) },
        )
    }
}

impl std::ops::Deref for Interpreting {
    type Target = Interpreter;

    fn deref(&self) -> &Interpreter {
        &self.interpreter
    }
}
