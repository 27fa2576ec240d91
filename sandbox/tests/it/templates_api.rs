//! `GET /{version}/{waba_id}/message_templates` with Meta's cursor paging.

use crate::support::*;
use serde_json::Value;

async fn get(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = client().get(url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn the_catalog_pages_forward_and_back_with_metas_cursors() {
    let sandbox = start(config()).await;
    let first_url = format!(
        "{}/{VERSION}/{WABA}/message_templates?limit=4",
        sandbox.base_url()
    );
    let mut url = first_url.clone();
    let mut names = Vec::new();
    let mut pages = Vec::new();
    loop {
        let (status, page) = get(&url, Some(TOKEN)).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 4);
        names.extend(data.iter().map(|t| {
            format!(
                "{}/{}",
                t["name"].as_str().unwrap(),
                t["language"].as_str().unwrap()
            )
        }));
        assert!(page["paging"]["cursors"]["before"].is_string());
        assert!(page["paging"]["cursors"]["after"].is_string());
        pages.push(page.clone());
        match page["paging"]["next"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(pages.len(), 3, "9 templates in pages of 4");
    assert_eq!(names.len(), 9);
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), 9, "no template twice: {names:?}");
    assert!(pages[0]["paging"].get("previous").is_none());
    // Back from the last page lands on the second.
    let (_, back) = get(
        pages[2]["paging"]["previous"].as_str().unwrap(),
        Some(TOKEN),
    )
    .await;
    assert_eq!(back["data"], pages[1]["data"]);
    // What was read parses as the domain's catalog.
    let catalog =
        wa_shared::domain::template::TemplateCatalog::from_value(serde_json::json!({"data":
        pages.iter().flat_map(|p| p["data"].as_array().unwrap().clone()).collect::<Vec<_>>()}))
        .unwrap();
    assert_eq!(catalog.len(), 9);
}

#[tokio::test]
async fn fields_and_filters_narrow_the_listing() {
    let sandbox = start(config()).await;
    let url = format!(
        "{}/{VERSION}/{WABA}/message_templates?status=PAUSED&fields=name,status",
        sandbox.base_url()
    );
    let (status, page) = get(&url, Some(TOKEN)).await;
    assert_eq!(status, 200);
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    let mut keys: Vec<&str> = data[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["id", "name", "status"]);
    assert_eq!(data[0]["name"], "winter_clearance");
    assert!(data[0].get("components").is_none());
}

#[tokio::test]
async fn a_bad_cursor_a_bad_token_and_an_unknown_waba_get_metas_errors() {
    let sandbox = start(config()).await;
    let base = format!("{}/{VERSION}/{WABA}/message_templates", sandbox.base_url());
    let (status, body) = get(&format!("{base}?after=garbage"), Some(TOKEN)).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(131059))
    );
    let (status, body) = get(&base, Some("wrong")).await;
    assert_eq!((status, body["error"]["code"].as_i64()), (401, Some(190)));
    let (status, body) = get(
        &format!("{}/{VERSION}/1/message_templates", sandbox.base_url()),
        Some(TOKEN),
    )
    .await;
    assert_eq!((status, body["error"]["code"].as_i64()), (400, Some(100)));
}
