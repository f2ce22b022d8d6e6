//! Every retry path of the watcher, against a scripted [`Source`] with the
//! tokio clock paused: delays are asserted in virtual time, nothing sleeps.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{Selector, Status};
use podlink_client::watch::{
    reflector, BackoffConfig, Change, Changes, EventStream, InformerBuilder, InitialList, ListPage,
    ListRequest, Source, SourceEvent, Termination, WatchConfig, WatchRequest,
};
use podlink_client::{Error, Result};
use tokio::time::Instant;

/// One step of a scripted watch response.
enum Step {
    Event(Box<SourceEvent<Pod>>),
    Fail(Error),
    /// Deliver nothing, forever (a dead peer).
    Hang,
}

#[derive(Debug, Clone, PartialEq)]
enum Call {
    List(ListRequest),
    Watch(WatchRequest),
}

#[derive(Default)]
struct ScriptState {
    /// `None` answers never (a list that hangs).
    lists: VecDeque<Option<Result<ListPage<Pod>>>>,
    watches: VecDeque<Result<Vec<Step>>>,
    calls: Vec<(Instant, Call)>,
}

/// A source that answers from a script and records when it was called.
/// Once a script runs out, the call never completes.
#[derive(Clone, Default)]
struct Script(Arc<Mutex<ScriptState>>);

impl Script {
    fn list(&self, page: Result<ListPage<Pod>>) -> &Self {
        self.0.lock().unwrap().lists.push_back(Some(page));
        self
    }

    fn hanging_list(&self) -> &Self {
        self.0.lock().unwrap().lists.push_back(None);
        self
    }

    fn watch(&self, reply: Result<Vec<Step>>) -> &Self {
        self.0.lock().unwrap().watches.push_back(reply);
        self
    }

    fn calls(&self) -> Vec<(Instant, Call)> {
        self.0.lock().unwrap().calls.clone()
    }
}

impl Source<Pod> for Script {
    fn list(&self, request: ListRequest) -> BoxFuture<'_, Result<ListPage<Pod>>> {
        let mut state = self.0.lock().unwrap();
        state.calls.push((Instant::now(), Call::List(request)));
        match state.lists.pop_front() {
            Some(Some(reply)) => futures::future::ready(reply).boxed(),
            Some(None) | None => futures::future::pending().boxed(),
        }
    }

    fn watch(&self, request: WatchRequest) -> BoxFuture<'_, Result<EventStream<Pod>>> {
        let mut state = self.0.lock().unwrap();
        state.calls.push((Instant::now(), Call::Watch(request)));
        match state.watches.pop_front() {
            Some(Ok(steps)) => {
                let stream =
                    futures::stream::unfold(VecDeque::from(steps), |mut steps| async move {
                        match steps.pop_front()? {
                            Step::Event(event) => Some((Ok(*event), steps)),
                            Step::Fail(err) => Some((Err(err), steps)),
                            Step::Hang => futures::future::pending().await,
                        }
                    });
                futures::future::ready(Ok(stream.boxed())).boxed()
            }
            Some(Err(err)) => futures::future::ready(Err(err)).boxed(),
            None => futures::future::pending().boxed(),
        }
    }
}

fn pod(name: &str, uid: &str, rv: u64) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(uid.into()),
            resource_version: Some(rv.to_string()),
            labels: Some([("app".to_string(), name.to_string())].into()),
            ..ObjectMeta::default()
        },
        ..Pod::default()
    }
}

fn page(items: Vec<Pod>, rv: u64, next: Option<&str>) -> Result<ListPage<Pod>> {
    Ok(ListPage {
        items,
        resource_version: rv.to_string(),
        continue_token: next.map(str::to_owned),
    })
}

fn api(code: u16, reason: &str) -> Error {
    Error::Api(Box::new(
        Status::failure("scripted", reason).with_code(code),
    ))
}

fn ev(event: SourceEvent<Pod>) -> Step {
    Step::Event(Box::new(event))
}

fn added(p: Pod) -> Step {
    ev(SourceEvent::Added(p))
}

fn modified(p: Pod) -> Step {
    ev(SourceEvent::Modified(p))
}

fn deleted(p: Pod) -> Step {
    ev(SourceEvent::Deleted(p))
}

fn bookmark(rv: u64) -> Step {
    ev(SourceEvent::Bookmark {
        resource_version: rv.to_string(),
        initial_events_end: false,
    })
}

fn paged() -> WatchConfig {
    WatchConfig::default()
        .initial(InitialList::Paged)
        .backoff(BackoffConfig::default().jitter(0.0))
}

/// Changes as `(TYPE, name, rv)` for compact assertions.
fn brief(change: &Change<Pod>) -> (&'static str, String, String) {
    let meta = &change.object().metadata;
    (
        change.kind(),
        meta.name.clone().unwrap_or_default(),
        meta.resource_version.clone().unwrap_or_default(),
    )
}

async fn take(changes: &mut Changes<Pod>, n: usize) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let next = tokio::time::timeout(Duration::from_secs(3600), changes.next())
            .await
            .expect("a change within an hour of virtual time")
            .expect("the stream goes on")
            .expect("no fatal error");
        out.push(brief(&next));
    }
    out
}

fn row(kind: &'static str, name: &str, rv: u64) -> (&'static str, String, String) {
    (kind, name.to_string(), rv.to_string())
}

fn watch_from(calls: &[(Instant, Call)], index: usize) -> Option<String> {
    match &calls[index].1 {
        Call::Watch(request) => request.resource_version.clone(),
        Call::List(_) => panic!("call {index} is a list: {calls:?}"),
    }
}

/// Virtual time between call `a` and call `b`.
fn gap(calls: &[(Instant, Call)], a: usize, b: usize) -> Duration {
    calls[b].0 - calls[a].0
}

#[tokio::test(start_paused = true)]
async fn paged_list_then_watch_from_its_resource_version() {
    let script = Script::default();
    script
        .list(page(vec![pod("a", "ua", 5)], 9, Some("next")))
        .list(page(vec![pod("b", "ub", 7)], 9, None))
        .watch(Ok(vec![
            added(pod("c", "uc", 10)),
            modified(pod("a", "ua", 11)),
            deleted(pod("b", "ub", 12)),
        ]));
    let (store, mut changes) = reflector(script.clone(), paged());
    let got = take(&mut changes, 5).await;
    assert_eq!(
        got,
        [
            row("ADDED", "a", 5),
            row("ADDED", "b", 7),
            row("ADDED", "c", 10),
            row("MODIFIED", "a", 11),
            row("DELETED", "b", 12)
        ]
    );
    assert!(store.is_synced());
    assert_eq!(store.len(), 2);
    assert_eq!(
        store
            .get(Some("default"), "a")
            .unwrap()
            .metadata
            .resource_version
            .as_deref(),
        Some("11")
    );
    let selector: Selector = [("app", "c")].into_iter().collect();
    assert_eq!(store.by_labels(&selector).len(), 1);
    let calls = script.calls();
    let Call::List(second) = &calls[1].1 else {
        panic!("{calls:?}")
    };
    assert_eq!(
        (second.limit, second.continue_token.as_deref()),
        (Some(500), Some("next"))
    );
    assert_eq!(watch_from(&calls, 2).as_deref(), Some("9"));
    let Call::Watch(request) = &calls[2].1 else {
        unreachable!()
    };
    assert!(request.bookmarks);
    let timeout = request.timeout_seconds.unwrap();
    assert!((300..600).contains(&timeout), "timeoutSeconds {timeout}");
}

#[tokio::test(start_paused = true)]
async fn expired_relists_at_once_and_emits_exactly_the_differences() {
    let script = Script::default();
    script
        .list(page(
            vec![
                pod("keep", "u1", 1),
                pod("change", "u2", 2),
                pod("gone", "u3", 3),
                pod("reborn", "u4", 4),
            ],
            4,
            None,
        ))
        .watch(Ok(vec![ev(SourceEvent::Error(Box::new(
            Status::failure("too old resource version: 4 (9)", "Expired").with_code(410),
        )))]))
        .list(page(
            vec![
                pod("keep", "u1", 1),
                pod("change", "u2", 8),
                pod("reborn", "u5", 7),
                pod("new", "u6", 9),
            ],
            9,
            None,
        ));
    let (store, mut changes) = reflector(script.clone(), paged());
    take(&mut changes, 4).await;
    let mut got = take(&mut changes, 5).await;
    got.sort();
    assert_eq!(
        got,
        [
            row("ADDED", "new", 9),
            row("ADDED", "reborn", 7),
            row("DELETED", "gone", 3),
            row("DELETED", "reborn", 4),
            row("MODIFIED", "change", 8)
        ]
    );
    let calls = script.calls();
    assert!(matches!(calls[2].1, Call::List(_)), "{calls:?}");
    assert_eq!(gap(&calls, 1, 2), Duration::ZERO, "410 re-lists at once");
    assert_eq!(store.len(), 4);
    assert_eq!(changes.health().report().restarts, 1);
    assert_eq!(changes.health().report().lists, 2);
}

#[tokio::test(start_paused = true)]
async fn http_500_backs_off_and_rewatches_without_relisting() {
    let script = Script::default();
    script
        .list(page(vec![pod("a", "ua", 1)], 3, None))
        .watch(Err(api(500, "InternalError")))
        .watch(Err(api(503, "ServiceUnavailable")))
        .watch(Ok(vec![modified(pod("a", "ua", 4))]));
    let (_store, mut changes) = reflector(script.clone(), paged());
    assert_eq!(
        take(&mut changes, 2).await,
        [row("ADDED", "a", 1), row("MODIFIED", "a", 4)]
    );
    let calls = script.calls();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert_eq!(gap(&calls, 1, 2), Duration::from_millis(800));
    assert_eq!(gap(&calls, 2, 3), Duration::from_millis(1600));
    for i in 1..4 {
        assert_eq!(watch_from(&calls, i).as_deref(), Some("3"));
    }
}

#[tokio::test(start_paused = true)]
async fn throttling_honours_retry_after() {
    let script = Script::default();
    script
        .list(page(vec![], 3, None))
        .watch(Err(Error::Throttled {
            status: Box::new(Status::failure("slow down", "TooManyRequests").with_code(429)),
            retry_after: Some(Duration::from_secs(7)),
        }))
        .watch(Ok(vec![added(pod("a", "ua", 4))]));
    let (_store, mut changes) = reflector(script.clone(), paged());
    assert_eq!(take(&mut changes, 1).await, [row("ADDED", "a", 4)]);
    let calls = script.calls();
    assert_eq!(gap(&calls, 1, 2), Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn broken_streams_resume_from_the_last_event_or_bookmark() {
    let script = Script::default();
    let decode = serde_json::from_str::<Pod>("{").unwrap_err();
    script
        .list(page(vec![], 3, None))
        .watch(Ok(vec![
            added(pod("a", "ua", 5)),
            Step::Fail(Error::ConnectionLost("reset".into())),
        ]))
        .watch(Ok(vec![
            bookmark(8),
            Step::Fail(Error::DecodeObject {
                what: "watch event",
                source: decode,
            }),
        ]))
        .watch(Ok(vec![modified(pod("a", "ua", 9))]));
    let (_store, mut changes) = reflector(script.clone(), paged());
    assert_eq!(
        take(&mut changes, 2).await,
        [row("ADDED", "a", 5), row("MODIFIED", "a", 9)]
    );
    let calls = script.calls();
    assert_eq!(watch_from(&calls, 2).as_deref(), Some("5"));
    assert_eq!(watch_from(&calls, 3).as_deref(), Some("8"));
    assert_eq!(gap(&calls, 1, 2), Duration::from_millis(800));
    assert_eq!(gap(&calls, 2, 3), Duration::from_millis(1600));
    assert_eq!(changes.health().report().restarts, 2);
}

#[tokio::test(start_paused = true)]
async fn clean_close_rewatches_at_once_but_an_empty_one_backs_off() {
    let script = Script::default();
    script
        .list(page(vec![], 3, None))
        .watch(Ok(vec![added(pod("a", "ua", 4))]))
        .watch(Ok(vec![]))
        .watch(Ok(vec![added(pod("b", "ub", 6))]));
    let (_store, mut changes) = reflector(script.clone(), paged());
    assert_eq!(
        take(&mut changes, 2).await,
        [row("ADDED", "a", 4), row("ADDED", "b", 6)]
    );
    let calls = script.calls();
    assert_eq!(
        gap(&calls, 1, 2),
        Duration::ZERO,
        "a clean end re-watches at once"
    );
    assert_eq!(watch_from(&calls, 2).as_deref(), Some("4"));
    assert_eq!(
        gap(&calls, 2, 3),
        Duration::from_millis(800),
        "an empty watch counts as a failure"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stalled_watch_is_restarted_after_the_deadline() {
    let script = Script::default();
    script
        .list(page(vec![], 3, None))
        .watch(Ok(vec![bookmark(6), Step::Hang]))
        .watch(Ok(vec![added(pod("a", "ua", 7))]));
    let config = paged().stall_timeout(Duration::from_secs(10));
    let (_store, mut changes) = reflector(script.clone(), config);
    assert_eq!(take(&mut changes, 1).await, [row("ADDED", "a", 7)]);
    let calls = script.calls();
    assert_eq!(
        gap(&calls, 1, 2),
        Duration::from_secs(10) + Duration::from_millis(800)
    );
    assert_eq!(watch_from(&calls, 2).as_deref(), Some("6"));
    let report = changes.health().report();
    assert!(report.last_error.unwrap().1.contains("stalled"));
}

#[tokio::test(start_paused = true)]
async fn backoff_resets_after_a_healthy_period() {
    let script = Script::default();
    script
        .list(page(vec![], 3, None))
        .watch(Err(api(500, "InternalError")))
        .watch(Err(api(500, "InternalError")))
        .watch(Ok(vec![added(pod("a", "ua", 4)), Step::Hang]))
        .watch(Ok(vec![added(pod("b", "ub", 5))]));
    let config = paged().stall_timeout(Duration::from_secs(300));
    let (_store, mut changes) = reflector(script.clone(), config);
    take(&mut changes, 2).await;
    let calls = script.calls();
    assert_eq!(gap(&calls, 1, 2), Duration::from_millis(800));
    assert_eq!(gap(&calls, 2, 3), Duration::from_millis(1600));
    // 300 s of health, then a stall: the delay starts over.
    assert_eq!(
        gap(&calls, 3, 4),
        Duration::from_secs(300) + Duration::from_millis(800)
    );
}

#[tokio::test(start_paused = true)]
async fn streaming_list_needs_no_list_call() {
    let script = Script::default();
    script.watch(Ok(vec![
        added(pod("a", "ua", 2)),
        added(pod("b", "ub", 3)),
        ev(SourceEvent::Bookmark {
            resource_version: "5".into(),
            initial_events_end: true,
        }),
        modified(pod("b", "ub", 6)),
    ]));
    let config = paged().initial(InitialList::Auto);
    let (store, mut changes) = reflector(script.clone(), config);
    let got = take(&mut changes, 3).await;
    assert_eq!(&got[2], &row("MODIFIED", "b", 6));
    assert!(store.is_synced());
    let calls = script.calls();
    assert_eq!(calls.len(), 1);
    let Call::Watch(request) = &calls[0].1 else {
        unreachable!()
    };
    assert!(request.send_initial_events && request.bookmarks && request.resource_version.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_rejected_streaming_list_falls_back_to_paging_for_good() {
    let script = Script::default();
    script
        .watch(Err(api(400, "BadRequest")))
        .list(page(vec![pod("a", "ua", 2)], 2, None))
        .watch(Ok(vec![ev(SourceEvent::Error(Box::new(
            Status::failure("old", "Expired").with_code(410),
        )))]))
        .list(page(vec![pod("a", "ua", 2)], 4, None))
        .watch(Ok(vec![added(pod("b", "ub", 5))]));
    let (_store, mut changes) = reflector(script.clone(), paged().initial(InitialList::Auto));
    assert_eq!(
        take(&mut changes, 2).await,
        [row("ADDED", "a", 2), row("ADDED", "b", 5)]
    );
    let kinds: Vec<_> = script
        .calls()
        .into_iter()
        .map(|(_, call)| matches!(call, Call::List(_)))
        .collect();
    assert_eq!(kinds, [false, true, false, true, false]);
}

#[tokio::test(start_paused = true)]
async fn not_found_is_fatal_and_reported_once() {
    let script = Script::default();
    script.list(Err(api(404, "NotFound")));
    let (store, mut changes) = reflector(script.clone(), paged());
    let first = changes.next().await.expect("an item");
    assert!(
        matches!(first, Err(Error::Api(ref status)) if status.code == 404),
        "{first:?}"
    );
    assert!(changes.next().await.is_none());
    assert!(!store.synced().await, "the store says it will never sync");
}

#[tokio::test(start_paused = true)]
async fn forbidden_retries_unless_asked_to_stop() {
    let script = Script::default();
    script
        .list(Err(api(403, "Forbidden")))
        .list(page(vec![pod("a", "ua", 1)], 1, None));
    let (_store, mut changes) = reflector(script.clone(), paged());
    assert_eq!(take(&mut changes, 1).await, [row("ADDED", "a", 1)]);

    let script = Script::default();
    script.list(Err(api(401, "Unauthorized")));
    let (_store, mut changes) = reflector(script.clone(), paged().stop_on_unauthorized(true));
    assert!(matches!(changes.next().await, Some(Err(Error::Api(_)))));
    assert!(changes.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn resource_versions_never_go_backwards() {
    let script = Script::default();
    script
        .list(page(vec![pod("a", "ua", 10)], 10, None))
        // A stale event and a stale re-list must not move "a" back to 8.
        .watch(Ok(vec![
            modified(pod("a", "ua", 8)),
            ev(SourceEvent::Error(Box::new(
                Status::failure("old", "Gone").with_code(410),
            ))),
        ]))
        .list(page(vec![pod("a", "ua", 8), pod("b", "ub", 12)], 12, None));
    let (store, mut changes) = reflector(script.clone(), paged());
    assert_eq!(
        take(&mut changes, 2).await,
        [row("ADDED", "a", 10), row("ADDED", "b", 12)]
    );
    assert_eq!(
        store
            .get(Some("default"), "a")
            .unwrap()
            .metadata
            .resource_version
            .as_deref(),
        Some("10")
    );
}

#[tokio::test(start_paused = true)]
async fn informer_calls_handlers_and_terminates_once() {
    let script = Script::default();
    script
        .list(page(vec![pod("a", "ua", 1)], 1, None))
        .watch(Ok(vec![
            modified(pod("a", "ua", 2)),
            deleted(pod("a", "ua", 3)),
            Step::Hang,
        ]));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let terminations = Arc::new(Mutex::new(Vec::new()));
    let (s1, s2, s3, t) = (
        seen.clone(),
        seen.clone(),
        seen.clone(),
        terminations.clone(),
    );
    let informer = InformerBuilder::new(paged().stall_timeout(Duration::from_secs(3600)))
        .on_add(move |p: &Arc<Pod>| {
            s1.lock()
                .unwrap()
                .push(format!("add {}", p.metadata.name.as_deref().unwrap()))
        })
        .on_update(move |old: &Arc<Pod>, new: &Arc<Pod>| {
            let rv = |p: &Arc<Pod>| p.metadata.resource_version.clone().unwrap();
            s2.lock()
                .unwrap()
                .push(format!("update {}->{}", rv(old), rv(new)));
        })
        .on_delete(move |p: &Arc<Pod>| {
            s3.lock()
                .unwrap()
                .push(format!("delete {}", p.metadata.name.as_deref().unwrap()))
        })
        .on_terminate(move |why: &Termination| t.lock().unwrap().push(format!("{why:?}")))
        .start(script);
    assert!(informer.store().synced().await);
    for _ in 0..100 {
        if seen.lock().unwrap().len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*seen.lock().unwrap(), ["add a", "update 1->2", "delete a"]);
    assert!(
        terminations.lock().unwrap().is_empty(),
        "no termination while running"
    );
    assert!(!informer.is_finished());
    let why = informer.stop().await;
    assert!(matches!(why, Termination::Stopped));
    assert_eq!(*terminations.lock().unwrap(), ["Stopped"]);
}

#[tokio::test(start_paused = true)]
async fn a_server_ignoring_send_initial_events_gets_paged_lists() {
    let script = Script::default();
    script
        // Synthetic ADDEDs then a plain progress bookmark: no streaming list.
        .watch(Ok(vec![added(pod("a", "ua", 2)), bookmark(3), Step::Hang]))
        .list(page(vec![pod("a", "ua", 2)], 3, None))
        .watch(Ok(vec![added(pod("b", "ub", 4))]));
    let (_store, mut changes) = reflector(script.clone(), paged().initial(InitialList::Auto));
    assert_eq!(
        take(&mut changes, 2).await,
        [row("ADDED", "a", 2), row("ADDED", "b", 4)]
    );
    let calls = script.calls();
    assert!(matches!(calls[1].1, Call::List(_)), "{calls:?}");
    assert_eq!(gap(&calls, 0, 1), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn repeated_expiry_without_progress_backs_off() {
    let expired = || {
        Ok(vec![ev(SourceEvent::Error(Box::new(
            Status::failure("old", "Expired").with_code(410),
        )))])
    };
    let script = Script::default();
    script
        .list(page(vec![], 2, None))
        .watch(expired())
        .list(page(vec![], 3, None))
        .watch(expired())
        .list(page(vec![], 4, None))
        .watch(Ok(vec![added(pod("a", "ua", 5))]));
    let (_store, mut changes) = reflector(script.clone(), paged());
    assert_eq!(take(&mut changes, 1).await, [row("ADDED", "a", 5)]);
    let calls = script.calls();
    assert_eq!(
        gap(&calls, 1, 2),
        Duration::ZERO,
        "the first expiry re-lists at once"
    );
    assert_eq!(
        gap(&calls, 3, 4),
        Duration::from_millis(800),
        "a second one in a row backs off"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hanging_list_times_out_and_is_retried() {
    let script = Script::default();
    script
        .list(page(vec![pod("a", "ua", 1)], 5, Some("page2")))
        .hanging_list()
        .list(page(vec![pod("b", "ub", 2)], 5, None))
        .watch(Ok(vec![Step::Hang]));
    let config = paged().list_timeout(Duration::from_secs(20));
    let (_store, mut changes) = reflector(script.clone(), config);
    assert_eq!(
        take(&mut changes, 2).await,
        [row("ADDED", "a", 1), row("ADDED", "b", 2)]
    );
    let calls = script.calls();
    assert_eq!(
        gap(&calls, 1, 2),
        Duration::from_secs(20) + Duration::from_millis(800)
    );
    let Call::List(retried) = &calls[2].1 else {
        panic!("{calls:?}")
    };
    assert_eq!(
        retried.continue_token.as_deref(),
        Some("page2"),
        "the same page is asked again"
    );
    assert!(changes
        .health()
        .report()
        .last_error
        .unwrap()
        .1
        .contains("list timed out"));
}

#[tokio::test(start_paused = true)]
async fn an_error_event_other_than_expiry_backs_off_and_rewatches() {
    let internal = Status::failure("etcd is sad", "InternalError").with_code(500);
    let script = Script::default();
    script
        .list(page(vec![], 3, None))
        .watch(Ok(vec![
            added(pod("a", "ua", 4)),
            ev(SourceEvent::Error(Box::new(internal))),
        ]))
        .watch(Ok(vec![modified(pod("a", "ua", 6))]));
    let (_store, mut changes) = reflector(script.clone(), paged());
    assert_eq!(
        take(&mut changes, 2).await,
        [row("ADDED", "a", 4), row("MODIFIED", "a", 6)]
    );
    let calls = script.calls();
    assert_eq!(calls.len(), 3, "no re-list: {calls:?}");
    assert_eq!(watch_from(&calls, 2).as_deref(), Some("4"));
    assert_eq!(gap(&calls, 1, 2), Duration::from_millis(800));
}
