//! The build-box manifests in `deploy/kubernetes/`, checked offline: every file against the
//! Kubernetes JSON schemas (the PyPI package `kubernetes-validate`, strict, so an unknown field
//! fails too), and what the schemas cannot say: the Service is headless and selects the pods, the
//! probes ask for `/global/health` with the password, the password comes from a Secret, and the
//! example ocio config loads. The probes' script is also run against a real `opencode serve`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ocio::opencode::secret::Password;
use support::{OPENCODE_VERSION, TestServer, pyvenv};

const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";
/// The oldest Kubernetes the manifests are meant for, and the newest the package knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

fn dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kubernetes"))
}

fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| pyvenv::python("kubernetes-validate-1.37.0", &[KUBERNETES_VALIDATE]))
}

/// Every YAML document in `file` (a YAML file of `deploy/kubernetes/`), as JSON.
fn documents(file: &Path) -> Vec<Value> {
    parsed()
        .get(file)
        .unwrap_or_else(|| {
            panic!(
                "{} is not a YAML file of {}",
                file.display(),
                dir().display()
            )
        })
        .clone()
}

/// The YAML files of `deploy/kubernetes/` and their documents, read once with one Python
/// (PyYAML comes with kubernetes-validate).
fn parsed() -> &'static BTreeMap<PathBuf, Vec<Value>> {
    static PARSED: OnceLock<BTreeMap<PathBuf, Vec<Value>>> = OnceLock::new();
    PARSED.get_or_init(|| {
        let files = yaml_files();
        let out = Command::new(python())
            .args([
                "-c",
                "import json, sys, yaml\n\
                 docs = [[d for d in yaml.safe_load_all(open(f)) if d is not None] for f in sys.argv[1:]]\n\
                 json.dump(docs, sys.stdout)",
            ])
            .args(&files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "a manifest is not YAML: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let docs: Vec<Vec<Value>> = serde_json::from_slice(&out.stdout).unwrap();
        files.into_iter().zip(docs).collect()
    })
}

/// Every `.yaml` file of `deploy/kubernetes/`, kustomization.yaml too.
fn yaml_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

/// The manifests kustomization.yaml lists.
fn resources() -> Vec<PathBuf> {
    let [kustomization] = &documents(&dir().join("kustomization.yaml"))[..] else {
        panic!("kustomization.yaml should be one document");
    };
    assert_eq!(kustomization["kind"], "Kustomization");
    kustomization["resources"]
        .as_array()
        .expect("kustomization.yaml lists resources")
        .iter()
        .map(|r| dir().join(r.as_str().unwrap()))
        .collect()
}

/// The one object of `kind` among the listed manifests.
fn object(kind: &str) -> Value {
    let mut found: Vec<Value> = resources()
        .iter()
        .flat_map(|file| documents(file))
        .filter(|doc| doc["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} among the manifests");
    found.remove(0)
}

fn opencode_container(statefulset: &Value) -> &Value {
    let containers = statefulset["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    containers
        .iter()
        .find(|c| c["name"] == "opencode")
        .expect("a container named opencode")
}

#[test]
fn the_kustomization_lists_every_manifest_and_nothing_else() {
    let listed = resources();
    for file in &listed {
        assert!(
            file.is_file(),
            "kustomization.yaml lists {}, which is missing",
            file.display()
        );
    }
    let mut yaml = yaml_files();
    yaml.retain(|p| !p.ends_with("kustomization.yaml"));
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(
        sorted, yaml,
        "every manifest in deploy/kubernetes/ is listed once"
    );
}

#[test]
fn every_manifest_passes_the_kubernetes_schemas() {
    let files = resources();
    for version in KUBERNETES_VERSIONS {
        let out = Command::new(python())
            .args([
                "-m",
                "kubernetes_validate",
                "--strict",
                "--no-warn",
                "-k",
                version,
            ])
            .args(&files)
            .output()
            .unwrap();
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "kubernetes-validate -k {version} failed:\n{report}"
        );
        // Each object was checked, none skipped (an unknown kind or a file with no object).
        for file in &files {
            let objects = documents(file).len();
            assert!(objects > 0, "{} holds no object", file.display());
            let passed = report
                .lines()
                .filter(|l| l.contains(&*file.to_string_lossy()) && l.contains(" passed "))
                .count();
            assert_eq!(
                passed,
                objects,
                "{} against {version}:\n{report}",
                file.display()
            );
        }
    }
}

#[test]
fn the_service_is_headless_and_selects_the_pods() {
    let service = object("Service");
    let statefulset = object("StatefulSet");
    assert_eq!(
        service["spec"]["clusterIP"], "None",
        "headless: DNS gives each pod's address"
    );
    assert_eq!(
        statefulset["spec"]["serviceName"], service["metadata"]["name"],
        "the pods' DNS names come from this Service"
    );
    let selector = service["spec"]["selector"].as_object().unwrap();
    assert!(!selector.is_empty());
    let labels = &statefulset["spec"]["template"]["metadata"]["labels"];
    for (key, value) in selector {
        assert_eq!(
            &labels[key], value,
            "the pods carry the Service's selector {key}"
        );
    }
    for (key, value) in statefulset["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(
            &labels[key], value,
            "the pods carry the StatefulSet's selector {key}"
        );
    }
    let port = &service["spec"]["ports"][0];
    assert_eq!(port["port"], 4096);
    let container = opencode_container(&statefulset);
    let named = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == port["targetPort"])
        .expect("the Service's targetPort names a container port");
    assert_eq!(named["containerPort"], 4096);
}

#[test]
fn the_server_serves_on_every_address_with_the_pinned_version() {
    let statefulset = object("StatefulSet");
    let container = opencode_container(&statefulset);
    let command: Vec<&str> = container["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        command[0].ends_with("/node_modules/.bin/opencode"),
        "{command:?}"
    );
    assert_eq!(
        command[1..],
        ["serve", "--hostname", "0.0.0.0", "--port", "4096"]
    );
    let init = statefulset["spec"]["template"]["spec"]["initContainers"][0]["command"].to_string();
    let pinned = format!("opencode-{OPENCODE_VERSION}/");
    assert!(
        command[0].contains(&pinned),
        "the server runs opencode-ai@{OPENCODE_VERSION}"
    );
    assert!(
        init.contains(&format!("version={OPENCODE_VERSION}")),
        "{init}"
    );
    assert!(init.contains("npm install"), "{init}");
}

#[test]
fn the_probes_ask_for_global_health_with_the_password() {
    let statefulset = object("StatefulSet");
    let pod = &statefulset["spec"]["template"]["spec"];
    let container = opencode_container(&statefulset);
    let script = probe_script();
    assert!(script.contains("path: \"/global/health\""), "{script}");
    assert!(
        script.contains("\"opencode:\" + password"),
        "user name opencode: {script}"
    );
    assert!(
        script.contains("process.env.OPENCODE_SERVER_PASSWORD"),
        "{script}"
    );
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        let command = &container[probe]["exec"]["command"];
        assert!(
            command.is_array(),
            "{probe} runs the health script: {container}"
        );
        assert_eq!(command[0], "node", "{probe}");
        let path = Path::new(command[1].as_str().unwrap());
        assert_eq!(path.file_name().unwrap(), "health.js", "{probe}");
        assert_eq!(command[2], "4096", "{probe} asks the served port");
        // The script is the ConfigMap's, mounted where the probe looks.
        let mount = container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| Path::new(m["mountPath"].as_str().unwrap()) == path.parent().unwrap())
            .unwrap_or_else(|| panic!("{probe}: nothing is mounted at {}", path.display()));
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap();
        assert_eq!(
            volume["configMap"]["name"],
            object("ConfigMap")["metadata"]["name"]
        );
    }
}

#[test]
fn the_password_comes_from_a_secret() {
    let statefulset = object("StatefulSet");
    let container = opencode_container(&statefulset);
    let env = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "OPENCODE_SERVER_PASSWORD")
        .expect("the server gets a password");
    assert!(
        env.get("value").is_none(),
        "never a password in the manifest"
    );
    let secret = &env["valueFrom"]["secretKeyRef"];
    assert_eq!(secret["name"], "opencode-password");
    assert_eq!(secret["key"], "password");
    assert_ne!(secret["optional"], true, "no server without its password");
    for file in resources() {
        for doc in documents(&file) {
            assert_ne!(
                doc["kind"],
                "Secret",
                "no Secret is committed: {}",
                file.display()
            );
        }
    }
}

#[test]
fn the_pods_run_unprivileged_with_a_workspace_and_resource_limits() {
    let statefulset = object("StatefulSet");
    let pod = &statefulset["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_ne!(pod["securityContext"]["runAsUser"], 0);
    assert_eq!(pod["automountServiceAccountToken"], false);
    let claims = statefulset["spec"]["volumeClaimTemplates"]
        .as_array()
        .unwrap();
    let workspace = claims[0]["metadata"]["name"].as_str().unwrap();
    let containers = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(pod["initContainers"].as_array().unwrap());
    for container in containers {
        let name = &container["name"];
        assert_eq!(
            container["securityContext"]["allowPrivilegeEscalation"], false,
            "{name}"
        );
        assert_eq!(
            container["securityContext"]["capabilities"]["drop"][0], "ALL",
            "{name}"
        );
        for kind in ["requests", "limits"] {
            for resource in ["cpu", "memory"] {
                let amount = &container["resources"][kind][resource];
                assert!(amount.is_string(), "{name} sets {kind}.{resource}");
            }
        }
        assert!(
            container["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["name"] == workspace && m["mountPath"] == "/workspace"),
            "{name} mounts the workspace volume"
        );
    }
    let container = opencode_container(&statefulset);
    assert_eq!(container["workingDir"], "/workspace");
}

#[test]
fn the_example_config_loads_and_follows_the_service() {
    let path = dir().join("ocio.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    if let Err(e) = ocio::config::parse(&text, &path) {
        panic!("{e}");
    }
    let statefulset = object("StatefulSet");
    let service = statefulset["spec"]["serviceName"].as_str().unwrap();
    let kustomization = &documents(&dir().join("kustomization.yaml"))[0];
    let namespace = kustomization["namespace"].as_str().unwrap();
    let config: toml::Table = toml::from_str(&text).unwrap();
    assert!(
        config.get("agents").is_none(),
        "one fleet, not an agent per pod"
    );
    let fleets = config["fleets"].as_array().unwrap();
    assert_eq!(fleets.len(), 1);
    assert_eq!(
        fleets[0]["dns"].as_str().unwrap(),
        format!("{service}.{namespace}.svc.cluster.local:4096")
    );
    assert_eq!(
        fleets[0]["password_env"].as_str().unwrap(),
        "OPENCODE_SERVER_PASSWORD"
    );
}

#[tokio::test]
async fn the_probe_script_passes_only_with_the_servers_password() {
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(script.path(), probe_script()).unwrap();
    let server = TestServer::start_with(
        ocio::scripted::Script::new(),
        Some(Password::new("probe-secret")),
    )
    .await;
    let port = server.url().rsplit(':').next().unwrap().to_string();
    let probe = |password: Option<&str>| {
        let mut command = Command::new("node");
        command.arg(script.path()).arg(&port);
        command.env_remove("OPENCODE_SERVER_PASSWORD");
        if let Some(password) = password {
            command.env("OPENCODE_SERVER_PASSWORD", password);
        }
        let out = command.output().expect("node runs the probe script");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(probe(Some("probe-secret")), (true, String::new()));
    let (ok, why) = probe(Some("wrong"));
    assert!(!ok && why.contains("401"), "{why}");
    let (ok, why) = probe(None);
    assert!(!ok && why.contains("401"), "{why}");
    server.stop().await;
    let (ok, why) = probe(Some("probe-secret"));
    assert!(!ok && why.contains("ECONNREFUSED"), "{why}");
}

fn probe_script() -> String {
    object("ConfigMap")["data"]["health.js"]
        .as_str()
        .expect("the ConfigMap holds health.js")
        .to_owned()
}
