//! The resource interpreter of a controller process, with the ResourceInterpreterCustomizations
//! and ResourceInterpreterWebhookConfigurations on the control plane kept in force (reloaded
//! on every change, as upstream's config managers).

use std::sync::Arc;

use futures::StreamExt;
use interpreter::Interpreter;
use karmada_api::config::{
    ResourceInterpreterCustomization, ResourceInterpreterWebhookConfiguration,
};

use crate::shared::{Change, Watched};

/// How long a controller waits for the interpreter's configuration before it starts.
const READY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

pub struct Interpreting {
    pub interpreter: Arc<Interpreter>,
    /// How many times customizations were loaded.
    loaded: tokio::sync::watch::Receiver<u64>,
    _customizations: Arc<Watched<ResourceInterpreterCustomization>>,
    _webhooks: Arc<Watched<ResourceInterpreterWebhookConfiguration>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Interpreting {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Interpreting {
    /// Watches the customizations and webhook configurations and keeps them loaded into a new
    /// interpreter.
    pub fn start(client: &kube::Client) -> Arc<Self> {
        let customizations: Arc<Watched<ResourceInterpreterCustomization>> =
            Watched::start(kube::Api::all(client.clone()), Default::default());
        let webhooks: Arc<Watched<ResourceInterpreterWebhookConfiguration>> =
            Watched::start(kube::Api::all(client.clone()), Default::default());
        let interpreter = Arc::new(Interpreter::with_control(client.clone()));
        let (loaded_tx, loaded) = tokio::sync::watch::channel(0u64);
        let (c_changes, w_changes) = (customizations.subscribe(), webhooks.subscribe());
        let (c_store, w_store) = (customizations.store(), webhooks.store());
        let into = Arc::clone(&interpreter);
        let task = tokio::spawn(async move {
            enum Kind {
                Customizations,
                Webhooks,
            }
            let mut changes = futures::stream::select(
                c_changes.map(|c| {
                    (Kind::Customizations, matches!(c, Change::Relisting | Change::Listed(_)))
                }),
                w_changes
                    .map(|c| (Kind::Webhooks, matches!(c, Change::Relisting | Change::Listed(_)))),
            );
            let (mut customizations_listed, mut webhooks_listed) = (false, false);
            while let Some((kind, listing)) = changes.next().await {
                // A (re)list is loaded once complete.
                if listing {
                    continue;
                }
                match kind {
                    Kind::Customizations => {
                        into.load(c_store.state().iter().map(|c| c.as_ref()));
                        customizations_listed = true;
                    }
                    Kind::Webhooks => {
                        into.load_webhooks(w_store.state().iter().map(|c| c.as_ref()));
                        webhooks_listed = true;
                    }
                }
                if customizations_listed && webhooks_listed {
                    loaded_tx.send_modify(|n| *n += 1);
                }
            }
        });
        Arc::new(Interpreting {
            interpreter,
            loaded,
            _customizations: customizations,
            _webhooks: webhooks,
            task,
        })
    }

    /// Waits until the customizations on the control plane are loaded.
    /// (At most 30 s: a process that cannot read them, an agent without the permission for
    /// one, goes on with what it has — the built-in rules — and picks them up when it can.)
    pub async fn ready(&self) {
        let mut loaded = self.loaded.clone();
        let waited = tokio::time::timeout(READY_WAIT, loaded.wait_for(|n| *n > 0)).await;
        if waited.is_err() {
            tracing::warn!(
                "the resource interpreter's customizations and webhook configurations are not loaded after {READY_WAIT:?}; interpreting with what is loaded"
            );
        }
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
