//! The Qdrant backend, over gRPC with `qdrant-client`.
//!
//! One collection holds every space as a named vector (cosine distance). Several daemons may
//! share it: each writes points whose ids are UUIDs derived from its library id and the track
//! id, with a `library` payload field, and every query, count, scroll and delete of a daemon
//! is restricted to its own `library`.
//!
//! Payload of a point (strings folded, see [`super::filter::fold`]), with a payload index on
//! every field a filter uses:
//!
//! | field | type | |
//! | --- | --- | --- |
//! | `library` | keyword (tenant) | the daemon's library id |
//! | `track_id` | integer | the library's track id |
//! | `path` | string | |
//! | `genre` | keyword | the genre tag |
//! | `predicted.<space>` | keyword | that model's top label |
//! | `artist`, `album` | keyword | |
//! | `duration_s` | float | |
//! | `bpm` | float | the tempo; absent when unknown |
//! | `camelot` | keyword | the key on the Camelot wheel (`"8A"`); absent when unknown |
//! | `fingerprint` | integer | [`IndexPoint::fingerprint`], for syncing |
//!
//! A missing field never matches a range or keyword condition, so tempo and key filters leave
//! out tracks without them, as the embedded index does.
//!
//! The collection and its named vectors are created on first use; a space that appears later
//! is added to the collection (`create_vector_name`, Qdrant ≥ 1.17).

use std::collections::HashMap;
use std::sync::Mutex;

use qdrant_client::qdrant::r#match::MatchValue;
use qdrant_client::qdrant::value::Kind;
use qdrant_client::qdrant::vectors_config::Config as VectorsConfigKind;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    CreateVectorNameRequestBuilder, DeletePointsBuilder, DenseVectorCreationConfigBuilder, Distance, FieldType,
    Filter as QFilter, KeywordIndexParamsBuilder, NamedVectors, PayloadIncludeSelector, PointId, PointStruct,
    PointsIdsList, Query as QQuery, QueryPointsBuilder, Range, RecommendInputBuilder, RecommendStrategy,
    RepeatedStrings, ScrollPointsBuilder, SearchParamsBuilder, UpsertPointsBuilder, Value, VectorInput,
    VectorParamsBuilder, VectorsConfigBuilder, VectorsSelector,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use sha2::{Digest, Sha256};

use super::filter::fold;
use super::scoring::normalised;
use super::{
    check_points, check_query, BoxFuture, Hit, IndexError, IndexPoint, QdrantConfig, Query, Strategy, VectorIndex,
};

/// Points per scroll page.
const PAGE: u32 = 1000;

pub struct QdrantIndex {
    client: Qdrant,
    url: String,
    collection: String,
    library: String,
    batch: usize,
    exact: bool,
    /// The collection's named vectors and their sizes, as last seen; `None` until fetched.
    spaces: Mutex<Option<HashMap<String, usize>>>,
}

/// The point id of a track of a library: a UUID from SHA-256 of both.
pub fn point_id(library: &str, track_id: i64) -> String {
    let digest = Sha256::new()
        .chain_update(library.as_bytes())
        .chain_update([0u8])
        .chain_update(track_id.to_le_bytes())
        .finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8: custom
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

fn keywords(values: Vec<String>) -> MatchValue {
    // Always keywords: `From<String>` would make a value with a space a full-text match.
    MatchValue::Keywords(RepeatedStrings { strings: values })
}

fn payload_key(space: &str) -> String {
    format!("predicted.{space}")
}

impl QdrantIndex {
    /// A client for the configured server; nothing is sent yet (gRPC connects lazily, and
    /// reconnects after the server comes back).
    pub fn new(config: &QdrantConfig, library: &str) -> Result<QdrantIndex, IndexError> {
        let url = config.url.clone();
        let api_key = (!config.api_key.is_empty()).then(|| config.api_key.clone());
        let client = Qdrant::from_url(&url)
            .api_key(api_key)
            .timeout(config.timeout())
            .connect_timeout(config.timeout())
            .skip_compatibility_check()
            .build()
            .map_err(|e| IndexError::Config(format!("index.qdrant.url = {url:?}: {e}")))?;
        Ok(QdrantIndex {
            client,
            url,
            collection: config.collection.clone(),
            library: library.to_string(),
            batch: config.batch.max(1),
            exact: config.exact,
            spaces: Mutex::new(None),
        })
    }

    /// Ask the server for its health; returns its version. Errors name the URL.
    pub async fn check(&self) -> Result<String, IndexError> {
        let health = self.client.health_check().await.map_err(|e| self.error("health check", e))?;
        Ok(health.version)
    }

    /// [`QdrantIndex::new`], then [`QdrantIndex::check`].
    pub async fn connect(config: &QdrantConfig, library: &str) -> Result<QdrantIndex, IndexError> {
        let index = QdrantIndex::new(config, library)?;
        let version = index.check().await?;
        tracing::info!(url = %index.url, %version, collection = %index.collection, library = %index.library, "connected to Qdrant");
        Ok(index)
    }

    pub fn collection(&self) -> &str {
        &self.collection
    }

    pub fn library(&self) -> &str {
        &self.library
    }

    fn error(&self, operation: &'static str, e: QdrantError) -> IndexError {
        let reason = match &e {
            QdrantError::ResponseError { status } => {
                // A refused or failed connection comes back as `Internal` "Failed to connect".
                let transport = matches!(status.code(), tonic::Code::Internal | tonic::Code::Unknown)
                    && (status.message().contains("Failed to connect") || status.message().contains("transport error"));
                if status.code() == tonic::Code::Unavailable || transport {
                    return IndexError::Unreachable { url: self.url.clone(), reason: status.message().to_string() };
                }
                format!("{}: {}", status.code(), status.message())
            }
            other => other.to_string(),
        };
        IndexError::Qdrant { url: self.url.clone(), collection: self.collection.clone(), operation, reason }
    }

    fn mine(&self) -> Condition {
        Condition::matches("library", keywords(vec![self.library.clone()]))
    }

    fn cached_spaces(&self) -> Option<HashMap<String, usize>> {
        self.spaces.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The collection's named vectors, fetched from the server; empty if it does not exist.
    async fn refresh_spaces(&self) -> Result<HashMap<String, usize>, IndexError> {
        let exists =
            self.client.collection_exists(&self.collection).await.map_err(|e| self.error("collection_exists", e))?;
        let mut spaces = HashMap::new();
        if exists {
            let info =
                self.client.collection_info(&self.collection).await.map_err(|e| self.error("collection_info", e))?;
            let config = info.result.and_then(|i| i.config).and_then(|c| c.params).and_then(|p| p.vectors_config);
            match config.and_then(|c| c.config) {
                Some(VectorsConfigKind::ParamsMap(map)) => {
                    for (name, params) in map.map {
                        spaces.insert(name, params.size as usize);
                    }
                }
                Some(VectorsConfigKind::Params(_)) => {
                    return Err(IndexError::Qdrant {
                        url: self.url.clone(),
                        collection: self.collection.clone(),
                        operation: "open",
                        reason: "the collection has one unnamed vector, not a named vector per model; \
                                 set index.qdrant.collection to a collection timbre created"
                            .into(),
                    })
                }
                None => {}
            }
        }
        *self.spaces.lock().unwrap_or_else(|p| p.into_inner()) = Some(spaces.clone());
        Ok(spaces)
    }

    /// Make sure the collection exists with these spaces; sizes must match.
    async fn ensure_spaces(&self, wanted: &HashMap<String, usize>) -> Result<(), IndexError> {
        let check = |known: &HashMap<String, usize>| -> Result<bool, IndexError> {
            let mut all = true;
            for (space, &dim) in wanted {
                match known.get(space) {
                    Some(&expected) if expected != dim => {
                        return Err(IndexError::Dimension { space: space.clone(), track: None, expected, got: dim })
                    }
                    Some(_) => {}
                    None => all = false,
                }
            }
            Ok(all)
        };
        if let Some(known) = self.cached_spaces() {
            if check(&known)? {
                return Ok(());
            }
        }
        let known = self.refresh_spaces().await?;
        if check(&known)? {
            return Ok(());
        }
        if known.is_empty()
            && !self.client.collection_exists(&self.collection).await.map_err(|e| self.error("collection_exists", e))?
        {
            let mut vectors = VectorsConfigBuilder::default();
            for (space, &dim) in wanted {
                vectors.add_named_vector_params(space, VectorParamsBuilder::new(dim as u64, Distance::Cosine));
            }
            let created = self
                .client
                .create_collection(CreateCollectionBuilder::new(&self.collection).vectors_config(vectors))
                .await;
            if let Err(e) = created {
                // Another daemon may have created it meanwhile.
                if !self.client.collection_exists(&self.collection).await.unwrap_or(false) {
                    return Err(self.error("create_collection", e));
                }
            }
            self.create_payload_indexes().await?;
        }
        let known = self.refresh_spaces().await?;
        for (space, &dim) in wanted {
            if known.contains_key(space) {
                continue;
            }
            self.client
                .create_vector_name(
                    CreateVectorNameRequestBuilder::new(
                        &self.collection,
                        space,
                        DenseVectorCreationConfigBuilder::new(dim as u64, Distance::Cosine),
                    )
                    .wait(true),
                )
                .await
                .map_err(|e| {
                    let mut error = self.error("adding a named vector", e);
                    if let IndexError::Qdrant { reason, .. } = &mut error {
                        reason.push_str(&format!(
                            " (space `{space}` is new to the collection; Qdrant before 1.17 cannot add a named vector: \
                             use a new index.qdrant.collection and rebuild)"
                        ));
                    }
                    error
                })?;
        }
        for space in wanted.keys() {
            self.create_keyword_index(&payload_key(space), false).await?;
        }
        let known = self.refresh_spaces().await?;
        check(&known)?;
        Ok(())
    }

    async fn create_keyword_index(&self, field: &str, tenant: bool) -> Result<(), IndexError> {
        self.client
            .create_field_index(
                CreateFieldIndexCollectionBuilder::new(&self.collection, field, FieldType::Keyword)
                    .field_index_params(KeywordIndexParamsBuilder::default().is_tenant(tenant).build())
                    .wait(true),
            )
            .await
            .map_err(|e| self.error("create_field_index", e))?;
        Ok(())
    }

    async fn create_payload_indexes(&self) -> Result<(), IndexError> {
        self.create_keyword_index("library", true).await?;
        for field in ["genre", "artist", "album", "camelot"] {
            self.create_keyword_index(field, false).await?;
        }
        let numbers = [("track_id", FieldType::Integer), ("duration_s", FieldType::Float), ("bpm", FieldType::Float)];
        for (field, kind) in numbers {
            self.client
                .create_field_index(CreateFieldIndexCollectionBuilder::new(&self.collection, field, kind).wait(true))
                .await
                .map_err(|e| self.error("create_field_index", e))?;
        }
        Ok(())
    }

    fn point(&self, point: &IndexPoint) -> PointStruct {
        let mut vectors = NamedVectors::default();
        let mut predicted = Payload::new();
        for v in &point.vectors {
            vectors = vectors.add_vector(v.space.clone(), normalised(&v.vector));
            predicted.insert(v.space.clone(), fold(&v.label));
        }
        let mut payload = Payload::new();
        payload.insert("library", self.library.clone());
        payload.insert("track_id", point.track_id);
        payload.insert("path", point.path.clone());
        payload.insert("genre", fold(&point.genre));
        payload.insert("artist", fold(&point.artist));
        payload.insert("album", fold(&point.album));
        payload.insert("duration_s", point.duration_s);
        if let Some(bpm) = point.bpm {
            payload.insert("bpm", bpm);
        }
        if let Some(key) = point.key {
            payload.insert("camelot", key.to_string());
        }
        payload.insert("fingerprint", point.fingerprint() as i64);
        payload.insert("predicted", Value::from(predicted));
        PointStruct::new(point_id(&self.library, point.track_id), vectors, payload)
    }

    /// The query's filter, plus this library.
    fn filter(&self, query: &Query) -> QFilter {
        let f = query.filter.folded();
        let mut must = vec![self.mine()];
        if !f.genres.is_empty() {
            must.push(Condition::from(QFilter::should([
                Condition::matches("genre", keywords(f.genres.clone())),
                Condition::matches(payload_key(&query.space), keywords(f.genres.clone())),
            ])));
        }
        if f.min_duration_s.is_some() || f.max_duration_s.is_some() {
            must.push(Condition::range(
                "duration_s",
                Range { gte: f.min_duration_s, lte: f.max_duration_s, ..Default::default() },
            ));
        }
        let mut must_not = Vec::new();
        if let Some(bpm) = f.bpm {
            // Without bounds the range only asks for a tempo to be known.
            must_not.push(Condition::is_empty("bpm"));
            if bpm.min.is_some() || bpm.max.is_some() {
                // With octaves, a stored tempo passes in any of three ranges.
                let ranges = bpm
                    .stored_ranges()
                    .into_iter()
                    .map(|(gte, lte)| Condition::range("bpm", Range { gte, lte, ..Default::default() }));
                must.push(Condition::from(QFilter::should(ranges)));
            }
        }
        if !f.keys.is_empty() {
            must.push(Condition::matches("camelot", keywords(f.keys.iter().map(|k| k.to_string()).collect())));
        }
        if !f.exclude_artists.is_empty() {
            must_not.push(Condition::matches("artist", keywords(f.exclude_artists.clone())));
        }
        if !f.exclude_albums.is_empty() {
            must_not.push(Condition::matches("album", keywords(f.exclude_albums.clone())));
        }
        if !f.exclude_tracks.is_empty() {
            let mut ids: Vec<i64> = f.exclude_tracks.iter().copied().collect();
            ids.sort_unstable();
            must_not.push(Condition::has_id(ids.into_iter().map(|id| PointId::from(point_id(&self.library, id)))));
        }
        QFilter { must, must_not, ..Default::default() }
    }

    async fn upsert_points(&self, points: Vec<IndexPoint>) -> Result<(), IndexError> {
        check_points(&points)?;
        let mut wanted: HashMap<String, usize> = HashMap::new();
        for point in &points {
            for v in &point.vectors {
                let dim = *wanted.entry(v.space.clone()).or_insert(v.vector.len());
                if dim != v.vector.len() {
                    return Err(IndexError::Dimension {
                        space: v.space.clone(),
                        track: Some(point.track_id),
                        expected: dim,
                        got: v.vector.len(),
                    });
                }
            }
        }
        if !wanted.is_empty() {
            self.ensure_spaces(&wanted).await?;
        }
        let (empty, points): (Vec<IndexPoint>, Vec<IndexPoint>) =
            points.into_iter().partition(|p| p.vectors.is_empty());
        for chunk in points.chunks(self.batch) {
            let structs: Vec<PointStruct> = chunk.iter().map(|p| self.point(p)).collect();
            self.client
                .upsert_points(UpsertPointsBuilder::new(&self.collection, structs).wait(true))
                .await
                .map_err(|e| self.error("upsert_points", e))?;
        }
        if !empty.is_empty() {
            self.delete_tracks(empty.iter().map(|p| p.track_id).collect()).await?;
        }
        Ok(())
    }

    async fn delete_tracks(&self, track_ids: Vec<i64>) -> Result<(), IndexError> {
        if track_ids.is_empty() || self.cached_or_refreshed_spaces().await?.is_empty() {
            return Ok(());
        }
        for chunk in track_ids.chunks(self.batch.max(1000)) {
            let ids: Vec<PointId> = chunk.iter().map(|&id| PointId::from(point_id(&self.library, id))).collect();
            self.client
                .delete_points(DeletePointsBuilder::new(&self.collection).points(PointsIdsList { ids }).wait(true))
                .await
                .map_err(|e| self.error("delete_points", e))?;
        }
        Ok(())
    }

    async fn cached_or_refreshed_spaces(&self) -> Result<HashMap<String, usize>, IndexError> {
        match self.cached_spaces() {
            Some(spaces) if !spaces.is_empty() => Ok(spaces),
            _ => self.refresh_spaces().await,
        }
    }

    async fn run_query(&self, query: Query) -> Result<Vec<Hit>, IndexError> {
        check_query(&query)?;
        let mut spaces = self.cached_or_refreshed_spaces().await?;
        if !spaces.contains_key(&query.space) {
            spaces = self.refresh_spaces().await?;
        }
        let Some(&dim) = spaces.get(&query.space) else { return Ok(Vec::new()) };
        let got = query.positive[0].len();
        if got != dim {
            return Err(IndexError::Dimension { space: query.space.clone(), track: None, expected: dim, got });
        }
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let examples = |vectors: &[Vec<f32>]| -> Vec<VectorInput> {
            vectors.iter().map(|v| VectorInput::new_dense(normalised(v))).collect()
        };
        let strategy = match query.strategy {
            Strategy::AverageVector => RecommendStrategy::AverageVector,
            Strategy::BestScore => RecommendStrategy::BestScore,
        };
        let recommend = RecommendInputBuilder::default()
            .positive(examples(&query.positive))
            .negative(examples(&query.negative))
            .strategy(strategy);
        let mut request = QueryPointsBuilder::new(&self.collection)
            .query(QQuery::new_recommend(recommend))
            .using(query.space.clone())
            .filter(self.filter(&query))
            .limit(query.limit as u64)
            .with_payload(PayloadIncludeSelector::new(vec!["track_id".to_string()]))
            .params(SearchParamsBuilder::default().exact(self.exact));
        request = if query.with_vectors {
            request.with_vectors(VectorsSelector::new(vec![query.space.clone()]))
        } else {
            request.with_vectors(false)
        };
        let response = self.client.query(request).await.map_err(|e| self.error("query", e))?;
        response
            .result
            .into_iter()
            .map(|point| {
                let track_id = track_id_of(&point.payload).ok_or_else(|| IndexError::Qdrant {
                    url: self.url.clone(),
                    collection: self.collection.clone(),
                    operation: "query",
                    reason: "a point without an integer `track_id` payload".into(),
                })?;
                let vector = if query.with_vectors {
                    point.vectors.as_ref().and_then(|v| v.get_vector_by_name(&query.space)).and_then(|v| match v {
                        qdrant_client::qdrant::vector_output::Vector::Dense(d) => Some(d.data),
                        _ => None,
                    })
                } else {
                    None
                };
                Ok(Hit { track_id, score: point.score, vector })
            })
            .collect()
    }

    async fn count(&self, space: &str) -> Result<u64, IndexError> {
        if !self.cached_or_refreshed_spaces().await?.contains_key(space)
            && !self.refresh_spaces().await?.contains_key(space)
        {
            return Ok(0);
        }
        let response = self
            .client
            .count(
                CountPointsBuilder::new(&self.collection)
                    .filter(QFilter::must([self.mine(), Condition::has_vector(space)]))
                    .exact(true),
            )
            .await
            .map_err(|e| self.error("count", e))?;
        Ok(response.result.map_or(0, |r| r.count))
    }

    async fn all_fingerprints(&self) -> Result<HashMap<i64, u64>, IndexError> {
        let mut out = HashMap::new();
        if self.cached_or_refreshed_spaces().await?.is_empty() {
            return Ok(out);
        }
        let mut offset: Option<PointId> = None;
        loop {
            let mut request = ScrollPointsBuilder::new(&self.collection)
                .filter(QFilter::must([self.mine()]))
                .limit(PAGE)
                .with_payload(PayloadIncludeSelector::new(vec!["track_id".to_string(), "fingerprint".to_string()]))
                .with_vectors(false);
            if let Some(offset) = offset.take() {
                request = request.offset(offset);
            }
            let page = self.client.scroll(request).await.map_err(|e| self.error("scroll", e))?;
            for point in page.result {
                if let (Some(id), Some(fp)) = (track_id_of(&point.payload), integer(&point.payload, "fingerprint")) {
                    out.insert(id, fp as u64);
                }
            }
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => return Ok(out),
            }
        }
    }

    async fn clear_library(&self) -> Result<(), IndexError> {
        if self.refresh_spaces().await?.is_empty() {
            return Ok(());
        }
        self.client
            .delete_points(DeletePointsBuilder::new(&self.collection).points(QFilter::must([self.mine()])).wait(true))
            .await
            .map_err(|e| self.error("delete_points", e))?;
        Ok(())
    }
}

fn integer(payload: &HashMap<String, Value>, key: &str) -> Option<i64> {
    match payload.get(key)?.kind.as_ref()? {
        Kind::IntegerValue(v) => Some(*v),
        Kind::DoubleValue(v) if v.fract() == 0.0 => Some(*v as i64),
        _ => None,
    }
}

fn track_id_of(payload: &HashMap<String, Value>) -> Option<i64> {
    integer(payload, "track_id")
}

impl VectorIndex for QdrantIndex {
    fn describe(&self) -> String {
        format!("qdrant ({}, collection {}, library {})", self.url, self.collection, self.library)
    }

    fn upsert(&self, points: Vec<IndexPoint>) -> BoxFuture<'_, Result<(), IndexError>> {
        Box::pin(self.upsert_points(points))
    }

    fn delete(&self, track_ids: Vec<i64>) -> BoxFuture<'_, Result<(), IndexError>> {
        Box::pin(self.delete_tracks(track_ids))
    }

    fn query(&self, query: Query) -> BoxFuture<'_, Result<Vec<Hit>, IndexError>> {
        Box::pin(self.run_query(query))
    }

    fn len<'a>(&'a self, space: &'a str) -> BoxFuture<'a, Result<u64, IndexError>> {
        Box::pin(self.count(space))
    }

    fn fingerprints(&self) -> BoxFuture<'_, Result<HashMap<i64, u64>, IndexError>> {
        Box::pin(self.all_fingerprints())
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), IndexError>> {
        Box::pin(self.clear_library())
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), IndexError>> {
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_ids_are_uuids_that_differ_per_library() {
        let a = point_id("host:/data", 42);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'8', "version 8: {a}");
        assert_eq!(a, point_id("host:/data", 42));
        assert_ne!(a, point_id("other:/data", 42));
        assert_ne!(a, point_id("host:/data", 43));
    }
}
