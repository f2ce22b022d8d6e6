//! `podlink get pods [NAME] [-l SELECTOR] [-w] [-o wide|json|yaml|name]`:
//! kubectl's pod table (computed here from the pods, not from the server's
//! Table form) or the objects themselves; `-w` then streams the reconciled
//! changes in the same format, reconnecting and re-listing as needed.

mod table;
mod yaml;

use std::io::Write;

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::core::{ApiResource, DynamicObject};
use podlink_client::watch::{
    reflector, ApiSource, Change, ListRequest, Source, Store, WatchConfig,
};
use serde_json::Value;

use crate::args::{GetArgs, GetOutput, GlobalArgs};
use crate::cluster::Cluster;
use crate::exit::Exit;
use crate::signals::StopSignals;

use self::table::TabWriter;

/// The resource type words `get` and `watch` accept for pods, and the name
/// given in a `pod/NAME` form.
pub fn parse_pod_resource(resource: &str) -> anyhow::Result<Option<&str>> {
    let (kind, name) = match resource.split_once('/') {
        Some((kind, name)) => (kind, Some(name)),
        None => (resource, None),
    };
    match kind {
        "pods" | "pod" | "po" => Ok(name.filter(|n| !n.is_empty())),
        other => {
            anyhow::bail!("the resource type {other:?} is not supported: podlink only lists pods")
        }
    }
}

/// Run the command.
pub async fn run(global: &GlobalArgs, args: GetArgs) -> anyhow::Result<Exit> {
    let name = match (parse_pod_resource(&args.resource)?, &args.name) {
        (Some(_), Some(_)) => {
            anyhow::bail!("give the pod's name either as pod/NAME or as NAME, not both")
        }
        (from_resource, name) => from_resource.map(str::to_owned).or_else(|| name.clone()),
    };
    let mut signals = StopSignals::install().context("installing signal handlers")?;
    let cluster = Cluster::connect(global).await?;
    let printer = Printer::new(args.output);
    let outcome = if args.watch {
        watch(
            &cluster,
            name.as_deref(),
            args.selector.as_deref(),
            printer,
            &mut signals,
        )
        .await
    } else {
        get(&cluster, name.as_deref(), args.selector.as_deref(), printer).await
    };
    cluster.close().await;
    outcome
}

async fn get(
    cluster: &Cluster,
    name: Option<&str>,
    selector: Option<&str>,
    mut printer: Printer,
) -> anyhow::Result<Exit> {
    let namespace = cluster.client.namespace().to_owned();
    if let Some(name) = name {
        let api = kube::Api::<DynamicObject>::namespaced_with(
            cluster.client.kube().clone(),
            &namespace,
            &pods(),
        );
        let pod = api.get(name).await.map_err(podlink_client::Error::from)?;
        printer.single(&pod)?;
        return Ok(Exit::SUCCESS);
    }
    let pods = list_all(cluster, &namespace, selector).await?;
    if pods.is_empty() && printer.is_table() {
        eprintln!("No resources found in {namespace} namespace.");
        return Ok(Exit::SUCCESS);
    }
    printer.list(&pods)?;
    Ok(Exit::SUCCESS)
}

/// Most pages followed in one listing (500 pods each): a server handing out
/// `continue` tokens forever cannot keep us listing.
const MAX_PAGES: usize = 10_000;

async fn list_all(
    cluster: &Cluster,
    namespace: &str,
    selector: Option<&str>,
) -> anyhow::Result<Vec<DynamicObject>> {
    let source = pod_source(cluster, namespace, selector, None);
    let mut pods = Vec::new();
    let mut request = ListRequest::default();
    request.limit = Some(WatchConfig::default().page_size);
    for _ in 0..MAX_PAGES {
        let page = source.list(request.clone()).await.context("listing pods")?;
        pods.extend(page.items);
        match page.continue_token {
            Some(token) => request.continue_token = Some(token),
            None => return Ok(pods),
        }
    }
    anyhow::bail!("listing pods: the server kept paging past {MAX_PAGES} pages")
}

fn pod_source(
    cluster: &Cluster,
    namespace: &str,
    selector: Option<&str>,
    name: Option<&str>,
) -> ApiSource<DynamicObject> {
    let mut source = ApiSource::<DynamicObject>::namespaced_with(
        cluster.client.kube().clone(),
        namespace,
        &pods(),
    );
    if let Some(selector) = selector {
        source = source.labels(selector);
    }
    if let Some(name) = name {
        source = source.fields(&format!("metadata.name={name}"));
    }
    source
}

async fn watch(
    cluster: &Cluster,
    name: Option<&str>,
    selector: Option<&str>,
    mut printer: Printer,
    signals: &mut StopSignals,
) -> anyhow::Result<Exit> {
    let namespace = cluster.client.namespace().to_owned();
    let source = pod_source(cluster, &namespace, selector, name);
    let (store, mut changes) = reflector(source, WatchConfig::default().stop_on_unauthorized(true));
    let wanted =
        |pod: &DynamicObject| name.is_none_or(|name| pod.metadata.name.as_deref() == Some(name));
    // The first snapshot arrives as one ADDED per object: print it as one
    // sorted table instead, then skip those ADDEDs.
    let mut initial_done = false;
    let mut skip = 0usize;
    loop {
        let change = tokio::select! {
            biased;
            signal = signals.recv() => return Ok(Exit::Signalled(signal)),
            change = changes.next() => change,
            synced = store.synced(), if !initial_done => {
                initial_done = true;
                if synced && store.is_empty() && printer.is_table() {
                    eprintln!("No resources found in {namespace} namespace.");
                }
                skip = print_store(&store, &wanted, &mut printer)?;
                continue;
            }
        };
        let change = match change {
            Some(change) => change.context("watching pods")?,
            None => anyhow::bail!("the watch ended without a reason"),
        };
        if !initial_done {
            // This change is the first of the snapshot's ADDEDs.
            initial_done = true;
            skip = print_store(&store, &wanted, &mut printer)?.saturating_sub(1);
            continue;
        }
        if skip > 0 && matches!(change, Change::Added(_)) {
            skip -= 1;
            continue;
        }
        skip = 0;
        if wanted(change.object()) {
            printer.event(change.object())?;
        }
    }
}

/// Prints the store sorted by name, as the server would list it; returns
/// how many objects it holds (the ADDEDs of its snapshot still to come).
fn print_store(
    store: &Store<DynamicObject>,
    wanted: &impl Fn(&DynamicObject) -> bool,
    printer: &mut Printer,
) -> anyhow::Result<usize> {
    let held = store.list();
    let mut pods: Vec<&DynamicObject> = held
        .iter()
        .map(AsRef::as_ref)
        .filter(|p| wanted(p))
        .collect();
    pods.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    printer.list_streamed(pods.into_iter())?;
    Ok(held.len())
}

/// Writes pods in one output format, keeping table widths across calls.
struct Printer {
    output: Option<GetOutput>,
    tab: TabWriter,
    header_printed: bool,
}

impl Printer {
    fn new(output: Option<GetOutput>) -> Self {
        Self {
            output,
            tab: TabWriter::default(),
            header_printed: false,
        }
    }

    fn is_table(&self) -> bool {
        matches!(self.output, None | Some(GetOutput::Wide))
    }

    fn wide(&self) -> bool {
        self.output == Some(GetOutput::Wide)
    }

    /// One object fetched by name.
    fn single(&mut self, pod: &DynamicObject) -> anyhow::Result<()> {
        match self.output {
            Some(GetOutput::Json) => write(&json_text(&pod_value(pod)?)),
            Some(GetOutput::Yaml) => write(&yaml::to_yaml(&pod_value(pod)?)),
            _ => self.list(std::slice::from_ref(pod)),
        }
    }

    /// A whole list, as `kubectl get` prints it.
    fn list(&mut self, pods: &[DynamicObject]) -> anyhow::Result<()> {
        match self.output {
            Some(GetOutput::Json) => write(&json_text(&list_value(pods)?)),
            Some(GetOutput::Yaml) => write(&yaml::to_yaml(&list_value(pods)?)),
            _ => self.list_streamed(pods.iter()),
        }
    }

    /// The initial state under `-w`: a table, or one object at a time.
    fn list_streamed<'a>(
        &mut self,
        pods: impl ExactSizeIterator<Item = &'a DynamicObject>,
    ) -> anyhow::Result<()> {
        if !self.is_table() {
            return pods.into_iter().try_for_each(|pod| self.event(pod));
        }
        let now = Timestamp::now();
        let mut rows = Vec::with_capacity(pods.len() + 1);
        if pods.len() > 0 {
            rows.push(table::headers(self.wide()));
            self.header_printed = true;
        }
        for pod in pods {
            rows.push(table::row(&typed(pod)?, self.wide(), now));
        }
        write(&self.tab.render(&rows))
    }

    /// One changed object under `-w`.
    fn event(&mut self, pod: &DynamicObject) -> anyhow::Result<()> {
        match self.output {
            Some(GetOutput::Name) => write(&format!(
                "pod/{}\n",
                pod.metadata.name.as_deref().unwrap_or_default()
            )),
            Some(GetOutput::Json) => write(&json_text(&pod_value(pod)?)),
            Some(GetOutput::Yaml) => write(&format!("---\n{}", yaml::to_yaml(&pod_value(pod)?))),
            None | Some(GetOutput::Wide) => {
                let mut rows = Vec::with_capacity(2);
                if !self.header_printed {
                    rows.push(table::headers(self.wide()));
                    self.header_printed = true;
                }
                rows.push(table::row(&typed(pod)?, self.wide(), Timestamp::now()));
                write(&self.tab.render(&rows))
            }
        }
    }
}

/// The pods resource, described at run time: objects stay dynamic so that
/// JSON and YAML output carry every field the server sent.
pub fn pods() -> ApiResource {
    ApiResource::erase::<Pod>(&())
}

/// A pod as JSON, with the `apiVersion` and `kind` that list items may lack.
fn pod_value(pod: &DynamicObject) -> anyhow::Result<Value> {
    let mut value = serde_json::to_value(pod).context("encoding a pod")?;
    if pod.types.is_none() {
        if let Some(map) = value.as_object_mut() {
            let resource = pods();
            map.insert("apiVersion".into(), resource.api_version.into());
            map.insert("kind".into(), resource.kind.into());
        }
    }
    Ok(value)
}

/// The typed pod behind a dynamic object, for the table's cells.
fn typed(pod: &DynamicObject) -> anyhow::Result<Pod> {
    serde_json::from_value(pod_value(pod)?).context("reading a pod")
}

fn list_value(pods: &[DynamicObject]) -> anyhow::Result<Value> {
    let items = pods
        .iter()
        .map(pod_value)
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(serde_json::json!({
        "apiVersion": "v1",
        "items": items,
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    }))
}

/// kubectl's JSON layout: keys sorted, four-space indent.
fn json_text(value: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serializing a Value into memory cannot fail.
    if serde::Serialize::serialize(value, &mut serializer).is_ok() {
        out.push(b'\n');
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn write(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}
