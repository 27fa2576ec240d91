//! A tenant's templates, looked up by `(name, language)` with an exact locale match.

use super::model::Template;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Why a catalog could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The JSON is not a template list, a page of templates or a single template.
    #[error("not Meta's message-template JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// One page of `GET /{waba-id}/message_templates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplatePage {
    /// The templates of this page.
    pub data: Vec<Template>,
    /// Cursors to the neighbouring pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paging: Option<Paging>,
}

/// Cursor paging of a Graph list.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Paging {
    /// `before`/`after` cursors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursors: Option<Cursors>,
    /// URL of the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// URL of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// Fields this build does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Graph paging cursors.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Cursors {
    /// Cursor of the first item of the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// Cursor of the last item of the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// What a `(name, language)` lookup found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup<'a> {
    /// That exact language version.
    Found(&'a Template),
    /// The name exists, but only in these other languages.
    OtherLanguages(Vec<&'a str>),
    /// No template has that name.
    Unknown,
}

/// A set of templates keyed by `(name, language)`; later inserts replace earlier ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateCatalog {
    by_key: BTreeMap<(String, String), Template>,
}

impl TemplateCatalog {
    /// A catalog of these templates.
    pub fn new(templates: impl IntoIterator<Item = Template>) -> Self {
        let mut catalog = Self::default();
        for t in templates {
            catalog.insert(t);
        }
        catalog
    }

    /// Read Meta's JSON: a page `{"data": [...]}`, a bare array, or one template object.
    pub fn from_json(json: &str) -> Result<Self, TemplateError> {
        let value: Value = serde_json::from_str(json)?;
        Self::from_value(value)
    }

    /// Like [`TemplateCatalog::from_json`], from an already parsed value.
    pub fn from_value(value: Value) -> Result<Self, TemplateError> {
        let templates: Vec<Template> = match value {
            Value::Array(_) => serde_json::from_value(value)?,
            Value::Object(ref map) if map.contains_key("data") => {
                serde_json::from_value::<TemplatePage>(value)?.data
            }
            other => vec![serde_json::from_value(other)?],
        };
        Ok(Self::new(templates))
    }

    /// Add or replace one language version.
    pub fn insert(&mut self, template: Template) {
        let key = (template.name.clone(), template.language.clone());
        self.by_key.insert(key, template);
    }

    /// Remove one language version, returning it.
    pub fn remove(&mut self, name: &str, language: &str) -> Option<Template> {
        self.by_key.remove(&(name.to_owned(), language.to_owned()))
    }

    /// The template with this name in exactly this locale.
    pub fn get(&self, name: &str, language: &str) -> Option<&Template> {
        self.by_key.get(&(name.to_owned(), language.to_owned()))
    }

    /// Found, known in other languages only, or unknown.
    pub fn lookup(&self, name: &str, language: &str) -> Lookup<'_> {
        if let Some(t) = self.get(name, language) {
            Lookup::Found(t)
        } else {
            let languages = self.languages_of(name);
            if languages.is_empty() {
                Lookup::Unknown
            } else {
                Lookup::OtherLanguages(languages)
            }
        }
    }

    /// The locales in which `name` exists, sorted.
    pub fn languages_of(&self, name: &str) -> Vec<&str> {
        self.by_key
            .keys()
            .filter(|(n, _)| n == name)
            .map(|(_, l)| l.as_str())
            .collect()
    }

    /// Every template, ordered by name then language.
    pub fn iter(&self) -> impl Iterator<Item = &Template> {
        self.by_key.values()
    }

    /// Number of language versions.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether the catalog holds nothing.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The catalog as a `{"data": [...]}` page, the shape it was read from.
    pub fn to_page(&self) -> TemplatePage {
        TemplatePage {
            data: self.by_key.values().cloned().collect(),
            paging: None,
        }
    }
}
