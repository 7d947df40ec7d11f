//! The pages, rendered on the server as HTML (pure functions of what `view` decided). No inline
//! script or style — the Content-Security-Policy allows only this server's `/static/` files —
//! and every control labelled, so that the pages work by keyboard and screen reader.

use std::fmt::Write as _;

use crate::view::{ClusterRow, ConditionView, Counts, PolicyRow, Usage, WorkloadRow};

/// HTML-escapes text for element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The signed-in user and what a page's forms need.
pub struct Viewer<'a> {
    pub user: &'a str,
    pub csrf: &'a str,
}

/// Which page, for the navigation's current item and the title.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    Overview,
    Clusters,
    Workloads,
    Policies,
    Events,
    /// The editor (under Policies in the navigation).
    Edit,
}

impl Page {
    /// The pages the navigation lists (the editor is reached from Policies).
    pub const NAV: [Page; 5] =
        [Page::Overview, Page::Clusters, Page::Workloads, Page::Policies, Page::Events];

    pub fn path(self) -> &'static str {
        match self {
            Page::Overview => "/",
            Page::Clusters => "/clusters",
            Page::Workloads => "/workloads",
            Page::Policies => "/policies",
            Page::Events => "/events",
            Page::Edit => "/edit",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Page::Overview => "Overview",
            Page::Clusters => "Clusters",
            Page::Workloads => "Workloads",
            Page::Policies => "Policies",
            Page::Events => "Events",
            Page::Edit => "Edit",
        }
    }
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} · karmada-rs</title>\n<link rel=\"stylesheet\" href=\"/static/app.css\">\n\
         <script src=\"/static/app.js\" defer></script>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

/// A whole page: navigation, the signed-in user with a sign-out button, and `main`.
/// A whole page; `live` is the URL its content is fetched from again when something changes
/// (none for the editor, whose text must not be replaced while it is edited).
pub fn layout(page: Page, viewer: &Viewer<'_>, live: Option<&str>, main: &str) -> String {
    let mut nav = String::new();
    for p in Page::NAV {
        let current = if p == page || (p == Page::Policies && page == Page::Edit) {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(nav, "<li><a href=\"{}\"{current}>{}</a></li>", p.path(), p.title());
    }
    let body = format!(
        "<a class=\"skip\" href=\"#main\">Skip to content</a>\n\
         <header><span class=\"brand\">karmada-rs</span>\n<nav aria-label=\"Pages\"><ul>{nav}</ul></nav>\n\
         <form method=\"post\" action=\"/logout\" class=\"who\"><span>Signed in as <strong>{user}</strong></span>\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\">Sign out</button></form></header>\n\
         <main id=\"main\"{live}>\n{main}</main>\n",
        user = escape(viewer.user),
        csrf = escape(viewer.csrf),
        live = live.map(|l| format!(" data-live=\"{}\"", escape(l))).unwrap_or_default(),
    );
    document(page.title(), &body)
}

/// The sign-in page, with why the last attempt failed.
pub fn login(error: Option<&str>) -> String {
    let error = error
        .map(|e| {
            format!("<p class=\"error\" role=\"alert\" id=\"login-error\">{}</p>\n", escape(e))
        })
        .unwrap_or_default();
    let described = if error.is_empty() { "" } else { " aria-describedby=\"login-error\"" };
    let body = format!(
        "<main id=\"main\" class=\"login\">\n<h1>Sign in to karmada-rs</h1>\n{error}\
         <form method=\"post\" action=\"/login\">\n\
         <label for=\"token\">Bearer token</label>\n\
         <textarea id=\"token\" name=\"token\" rows=\"4\" required autocomplete=\"off\" spellcheck=\"false\"{described}></textarea>\n\
         <p class=\"hint\">A token the control plane accepts, e.g. <code>kubectl create token NAME</code>. \
         Every page is read with it: you see what it may see.</p>\n\
         <button type=\"submit\">Sign in</button>\n</form>\n</main>\n"
    );
    document("Sign in", &body)
}

fn meter(usage: &Option<Usage>, what: &str) -> String {
    match usage {
        Some(u) => format!(
            "<meter min=\"0\" max=\"100\" low=\"70\" high=\"90\" optimum=\"0\" value=\"{}\" aria-label=\"{what} {}% used\"></meter> <span>{}</span>",
            u.percent(),
            u.percent(),
            escape(&u.label)
        ),
        None => "<span class=\"muted\">not reported</span>".into(),
    }
}

fn condition_badge(c: &ConditionView) -> String {
    let (class, state) = if c.ok { ("ok", "True") } else { ("bad", "False") };
    let title = if c.message.is_empty() {
        c.reason.clone()
    } else {
        format!("{}: {}", c.reason, c.message)
    };
    format!(
        "<span class=\"badge {class}\" title=\"{}\">{} {state}</span>",
        escape(&title),
        escape(&c.kind)
    )
}

/// A section saying the token may not read something.
pub fn denied(what: &str, message: &str) -> String {
    format!(
        "<section class=\"denied\" role=\"status\"><h2>{}</h2><p>{}</p></section>\n",
        escape(what),
        escape(message)
    )
}

/// The overview; `clusters` is `None` when the token may not list them (the caller says why).
pub fn overview(
    counts: &Counts,
    clusters: Option<&[ClusterRow]>,
    failing: &[WorkloadRow],
) -> String {
    let mut out = String::from("<h1>Overview</h1>\n<ul class=\"cards\">\n");
    let cards = [
        ("Clusters ready", format!("{} / {}", counts.clusters_ready, counts.clusters)),
        ("Workloads", counts.workloads.to_string()),
        ("Failing workloads", counts.workloads_failing.to_string()),
        ("Propagation policies", counts.propagation_policies.to_string()),
        ("Override policies", counts.override_policies.to_string()),
    ];
    for (label, value) in cards {
        let id = label.to_lowercase().replace(' ', "-");
        let _ = writeln!(
            out,
            "<li class=\"card\" aria-labelledby=\"{id}\"><span class=\"value\" data-count=\"{id}\">{}</span><span id=\"{id}\">{label}</span></li>",
            escape(&value)
        );
    }
    out.push_str("</ul>\n");
    if let Some(clusters) = clusters {
        out.push_str("<h2>Clusters</h2>\n");
        out.push_str(&clusters_table(clusters, false));
    }
    if !failing.is_empty() {
        out.push_str("<h2>Failing workloads</h2>\n");
        out.push_str(&workloads_table(failing));
    }
    out
}

fn clusters_table(clusters: &[ClusterRow], detail: bool) -> String {
    if clusters.is_empty() {
        return "<p>No clusters have joined yet: <code>karmadactl join</code> or <code>karmadactl register</code>.</p>\n".into();
    }
    let mut out = String::from(
        "<table class=\"clusters\">\n<thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Ready</th><th scope=\"col\">Mode</th><th scope=\"col\">CPU allocated</th><th scope=\"col\">Memory allocated</th>",
    );
    if detail {
        out.push_str("<th scope=\"col\">Version</th><th scope=\"col\">Nodes ready</th><th scope=\"col\">Taints</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for c in clusters {
        let _ = write!(
            out,
            "<tr data-cluster=\"{name}\"><th scope=\"row\"><a href=\"/clusters/{name}\">{name}</a></th><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            condition_badge(&c.ready),
            escape(&c.mode),
            meter(&c.cpu, "CPU"),
            meter(&c.memory, "memory"),
            name = escape(&c.name),
        );
        if detail {
            let taints = if c.taints.is_empty() {
                "<span class=\"muted\">none</span>".to_owned()
            } else {
                c.taints
                    .iter()
                    .map(|t| format!("<code>{}</code>", escape(t)))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let _ = write!(
                out,
                "<td>{}</td><td>{} / {}</td><td>{taints}</td>",
                escape(&c.version),
                c.nodes.0,
                c.nodes.1
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

pub fn clusters(clusters: &[ClusterRow]) -> String {
    format!("<h1>Clusters</h1>\n{}", clusters_table(clusters, true))
}

fn workloads_table(workloads: &[WorkloadRow]) -> String {
    let mut out = String::from(
        "<table class=\"workloads\">\n<thead><tr><th scope=\"col\">Workload</th><th scope=\"col\">Ready / desired</th><th scope=\"col\">Replicas per cluster</th><th scope=\"col\">Policy</th><th scope=\"col\">Conditions</th></tr></thead>\n<tbody>\n",
    );
    for w in workloads {
        let ready = w.ready().map_or("–".to_owned(), |r| r.to_string());
        let total: i32 = w.placements.iter().map(|p| p.replicas).sum::<i32>().max(1);
        let mut placements = String::from("<ul class=\"placements\">");
        for p in &w.placements {
            let ready = p.ready.map_or(String::new(), |r| format!(", {r} ready"));
            let _ = write!(
                placements,
                "<li data-placement=\"{cluster}\"><span class=\"cluster\">{cluster}</span> <meter min=\"0\" max=\"{total}\" value=\"{replicas}\" aria-label=\"{cluster}: {replicas} replicas\"></meter> <span class=\"n\">{replicas}{ready}</span> <span class=\"health {health_class}\">{health}</span></li>",
                cluster = escape(&p.cluster),
                replicas = p.replicas,
                health = escape(&p.health),
                health_class = escape(&p.health.to_lowercase()),
            );
        }
        if w.placements.is_empty() {
            placements.push_str("<li class=\"muted\">not placed</li>");
        }
        placements.push_str("</ul>");
        let conditions = w.conditions.iter().map(condition_badge).collect::<Vec<_>>().join(" ");
        let failures: String = w
            .conditions
            .iter()
            .filter(|c| !c.ok && !c.message.is_empty())
            .map(|c| format!("<p class=\"why\">{}: {}</p>", escape(&c.reason), escape(&c.message)))
            .collect();
        let _ = writeln!(
            out,
            "<tr data-workload=\"{ns}/{name}\"><th scope=\"row\"><span class=\"kind\">{kind}</span> <a href=\"{path}\">{ns}/{name}</a></th><td>{ready} / {desired}</td><td>{placements}</td><td>{policy}</td><td>{conditions}{failures}</td></tr>",
            kind = escape(&w.kind),
            path = escape(&w.path()),
            ns = escape(&w.namespace),
            name = escape(&w.name),
            desired = w.desired,
            policy =
                w.policy.as_deref().map_or("<span class=\"muted\">none</span>".to_owned(), escape),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// Choosing one namespace to list (what a token limited to a namespace can read).
pub fn namespace_form(namespace: Option<&str>) -> String {
    format!(
        "<form method=\"get\" action=\"/workloads\" class=\"namespace\"><label for=\"namespace\">Namespace</label> \
         <input id=\"namespace\" name=\"namespace\" value=\"{}\" pattern=\"[a-z0-9]([-a-z0-9]*[a-z0-9])?\" required> \
         <button type=\"submit\">Show</button></form>\n",
        escape(namespace.unwrap_or_default())
    )
}

pub fn workloads(workloads: &[WorkloadRow], namespace: Option<&str>) -> String {
    let title = match namespace {
        Some(ns) => format!("<h1>Workloads in {}</h1>\n", escape(ns)),
        None => "<h1>Workloads</h1>\n".to_owned(),
    };
    if workloads.is_empty() {
        return format!(
            "{title}<p>No workload is propagated here yet: create one with a PropagationPolicy that selects it.</p>\n"
        );
    }
    format!("{title}{}", workloads_table(workloads))
}

pub fn policies(rows: &[PolicyRow], denied: &str) -> String {
    let mut out =
        String::from("<h1>Policies</h1>\n<p><a href=\"/edit\">New: write or paste YAML</a></p>\n");
    out.push_str(denied);
    if rows.is_empty() {
        out.push_str("<p>No policies yet.</p>\n");
        return out;
    }
    out.push_str("<table class=\"policies\">\n<thead><tr><th scope=\"col\">Policy</th><th scope=\"col\">Selects</th><th scope=\"col\">Placement or changes</th><th scope=\"col\">Workloads it placed</th><th scope=\"col\"><span class=\"visually-hidden\">Actions</span></th></tr></thead>\n<tbody>\n");
    for r in rows {
        let selects = r.selects.iter().map(|s| escape(s)).collect::<Vec<_>>().join("<br>");
        let placed = if r.placed.is_empty() {
            "<span class=\"muted\">none</span>".to_owned()
        } else {
            r.placed.iter().map(|p| escape(p)).collect::<Vec<_>>().join("<br>")
        };
        let mut edit = format!("/edit?kind={}&name={}", r.kind, escape(&r.name));
        if let Some(ns) = &r.namespace {
            edit.push_str(&format!("&namespace={}", escape(ns)));
        }
        let _ = writeln!(
            out,
            "<tr data-policy=\"{kind}/{id}\"><th scope=\"row\"><span class=\"kind\">{kind}</span> {id}</th><td>{selects}</td><td>{summary}</td><td>{placed}</td><td><a href=\"{edit}\">Edit<span class=\"visually-hidden\"> {kind} {id}</span></a></td></tr>",
            kind = r.kind,
            id = escape(&r.id),
            summary = escape(&r.summary),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// What the API answered to an edit.
pub struct EditResult<'a> {
    pub dry_run: bool,
    pub applied: &'a [String],
    pub failure: Option<&'a crate::edit::Failure>,
}

/// The editor: a labelled text area, "Dry run" and "Apply", and the API's answer — each
/// field an error names listed with its message, tied to the text area for screen readers.
pub fn editor(manifest: &str, csrf: &str, result: Option<&EditResult<'_>>) -> String {
    let mut answer = String::new();
    let mut described = String::new();
    if let Some(result) = result {
        if !result.applied.is_empty() {
            answer.push_str("<ul class=\"applied\" role=\"status\" id=\"edit-applied\">");
            for line in result.applied {
                let _ = write!(answer, "<li>{}</li>", escape(line));
            }
            answer.push_str("</ul>\n");
            if result.dry_run && result.failure.is_none() {
                answer.push_str("<p class=\"hint\">Nothing was changed: this was a dry run. Apply to make it so.</p>\n");
            }
        }
        if let Some(failure) = result.failure {
            described = " aria-describedby=\"edit-error\" aria-invalid=\"true\"".to_owned();
            let _ = write!(
                answer,
                "<div class=\"error\" role=\"alert\" id=\"edit-error\"><p>Document {}: {}</p>",
                escape(&failure.document),
                escape(&failure.message)
            );
            if !failure.fields.is_empty() {
                answer.push_str("<ul class=\"fields\">");
                for (field, message) in &failure.fields {
                    let _ = write!(
                        answer,
                        "<li data-field=\"{f}\"><code>{f}</code>: {}</li>",
                        escape(message),
                        f = escape(field)
                    );
                }
                answer.push_str("</ul>");
            }
            answer.push_str("</div>\n");
        }
    }
    format!(
        "<h1>Edit</h1>\n<p>Paste or write objects (YAML or JSON; several separated by <code>---</code>). They are applied server-side with your token: the API server validates them and decides what you may change.</p>\n\
         <form method=\"post\" action=\"/edit\" class=\"editor\">\n<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <label for=\"manifest\">Manifest</label>\n\
         <textarea id=\"manifest\" name=\"manifest\" rows=\"24\" spellcheck=\"false\" required{described}>{manifest}</textarea>\n\
         <div class=\"actions\"><button type=\"submit\" name=\"action\" value=\"dry-run\">Dry run</button> \
         <button type=\"submit\" name=\"action\" value=\"apply\">Apply</button></div>\n</form>\n{answer}",
        csrf = escape(csrf),
        manifest = escape(manifest),
    )
}

fn conditions_table(conditions: &[ConditionView]) -> String {
    if conditions.is_empty() {
        return "<p class=\"muted\">No conditions reported yet.</p>\n".into();
    }
    let mut out = String::from(
        "<table class=\"conditions\"><thead><tr><th scope=\"col\">Condition</th><th scope=\"col\">Status</th><th scope=\"col\">Reason</th><th scope=\"col\">Message</th></tr></thead><tbody>\n",
    );
    for c in conditions {
        let _ = writeln!(
            out,
            "<tr><th scope=\"row\">{}</th><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.kind),
            if c.ok { "ok" } else { "bad" },
            if c.ok { "True" } else { "False" },
            escape(&c.reason),
            escape(&c.message)
        );
    }
    out.push_str("</tbody></table>\n");
    out
}

pub fn cluster_detail(d: &crate::view::ClusterDetail) -> String {
    let mut out = format!(
        "<h1>Cluster {}</h1>\n<p>{} mode · Kubernetes {} · {} of {} nodes ready</p>\n<h2>Conditions</h2>\n{}",
        escape(&d.row.name),
        escape(&d.row.mode),
        escape(&d.row.version),
        d.row.nodes.0,
        d.row.nodes.1,
        conditions_table(&d.conditions)
    );
    out.push_str("<h2>Resources</h2>\n");
    if d.resources.is_empty() {
        out.push_str("<p class=\"muted\">Not reported yet.</p>\n");
    } else {
        out.push_str("<table><thead><tr><th scope=\"col\">Resource</th><th scope=\"col\">Allocatable</th><th scope=\"col\">Allocated</th><th scope=\"col\">Allocating</th></tr></thead><tbody>\n");
        for r in &d.resources {
            let _ = writeln!(
                out,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&r.name),
                escape(&r.allocatable),
                escape(&r.allocated),
                escape(&r.allocating)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("<h2>Taints</h2>\n");
    if d.row.taints.is_empty() {
        out.push_str("<p class=\"muted\">None.</p>\n");
    } else {
        out.push_str("<ul>");
        for t in &d.row.taints {
            let _ = write!(out, "<li><code>{}</code></li>", escape(t));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("<h2>What runs there</h2>\n");
    if d.workloads.is_empty() {
        out.push_str("<p class=\"muted\">No workload is placed here.</p>\n");
    } else {
        out.push_str("<ul class=\"placed-here\">");
        for (w, replicas) in &d.workloads {
            let _ = write!(
                out,
                "<li>{} <span class=\"n\">({replicas} replicas)</span></li>",
                escape(w)
            );
        }
        out.push_str("</ul>\n");
    }
    out
}

pub fn events_table(events: &[crate::view::EventRow]) -> String {
    if events.is_empty() {
        return "<p class=\"muted\">No events.</p>\n".into();
    }
    let mut out = String::from(
        "<table class=\"events\"><thead><tr><th scope=\"col\">Last seen</th><th scope=\"col\">Type</th><th scope=\"col\">Reason</th><th scope=\"col\">Object</th><th scope=\"col\">Message</th><th scope=\"col\">Count</th></tr></thead><tbody>\n",
    );
    for e in events {
        let _ = writeln!(
            out,
            "<tr data-reason=\"{reason}\"><td>{}</td><td class=\"{}\">{}</td><td>{reason}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&e.time),
            if e.kind == "Warning" { "bad" } else { "" },
            escape(&e.kind),
            escape(&e.object),
            escape(&e.note),
            e.count,
            reason = escape(&e.reason),
        );
    }
    out.push_str("</tbody></table>\n");
    out
}

/// The Events page: a labelled filter form (type, text, namespace) and the table.
pub fn events(
    events: &[crate::view::EventRow],
    filter: &crate::view::EventFilter,
    namespace: Option<&str>,
) -> String {
    let selected = |k: &str| if filter.kind == k { " selected" } else { "" };
    format!(
        "<h1>Events</h1>\n<form method=\"get\" action=\"/events\" class=\"filter\">\
         <label for=\"type\">Type</label> <select id=\"type\" name=\"type\"><option value=\"\"{}>Any</option>\
         <option value=\"Normal\"{}>Normal</option><option value=\"Warning\"{}>Warning</option></select> \
         <label for=\"q\">Containing</label> <input id=\"q\" name=\"q\" value=\"{}\"> \
         <label for=\"namespace\">Namespace</label> <input id=\"namespace\" name=\"namespace\" value=\"{}\" pattern=\"[a-z0-9]([-a-z0-9]*[a-z0-9])?\"> \
         <button type=\"submit\">Filter</button></form>\n{}",
        selected(""),
        selected("Normal"),
        selected("Warning"),
        escape(&filter.text),
        escape(namespace.unwrap_or_default()),
        events_table(events)
    )
}

/// A workload's page: where it runs, why (conditions, with the scheduler's reasons when it
/// could not place it), the policy and overrides that apply, and its events.
pub fn workload_detail(
    w: &WorkloadRow,
    all_conditions: &[ConditionView],
    why: &[(String, crate::view::Verdict)],
    overrides: &[String],
    events: &[crate::view::EventRow],
) -> String {
    let mut out = format!(
        "<h1><span class=\"kind\">{}</span> {}</h1>\n<p>Binding <code>{}</code> · desired {} · ready {}</p>\n",
        escape(&w.kind),
        escape(&w.id()),
        escape(&w.binding),
        w.desired,
        w.ready().map_or("–".to_owned(), |r| r.to_string())
    );
    out.push_str("<h2>Where it runs</h2>\n");
    out.push_str(&workloads_table(std::slice::from_ref(w)));
    if !why.is_empty() {
        out.push_str("<h2>Every cluster</h2>\n<p class=\"hint\">The scheduler's filters run now on this placement (they may have said otherwise when it was scheduled).</p>\n<table class=\"verdicts\"><thead><tr><th scope=\"col\">Cluster</th><th scope=\"col\">Verdict</th></tr></thead><tbody>\n");
        for (cluster, verdict) in why {
            let text = match verdict {
                crate::view::Verdict::Chosen(n) => {
                    format!("<span class=\"ok\">chosen: {n} replicas</span>")
                }
                crate::view::Verdict::NotPicked => {
                    "fits, not picked by the placement (spread, weights or replicas)".to_owned()
                }
                crate::view::Verdict::FilteredOut { plugin, reason } => {
                    format!(
                        "<span class=\"bad\">filtered out: {} ({})</span>",
                        escape(reason),
                        escape(plugin)
                    )
                }
            };
            let _ = writeln!(
                out,
                "<tr data-why=\"{c}\"><th scope=\"row\">{c}</th><td>{text}</td></tr>",
                c = escape(cluster)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("<h2>Conditions</h2>\n");
    out.push_str(&conditions_table(all_conditions));
    let _ = write!(
        out,
        "<h2>Policies</h2>\n<p>Placed by: {}</p>\n<p>Overrides that apply: {}</p>\n",
        w.policy.as_deref().map_or("<span class=\"muted\">none</span>".to_owned(), escape),
        if overrides.is_empty() {
            "<span class=\"muted\">none</span>".to_owned()
        } else {
            overrides.iter().map(|o| escape(o)).collect::<Vec<_>>().join(", ")
        }
    );
    out.push_str("<h2>Events</h2>\n");
    out.push_str(&events_table(events));
    out
}
