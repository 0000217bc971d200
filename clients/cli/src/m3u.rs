//! Extended M3U playlists (`#EXTM3U`, UTF-8: what MPD, mpv and VLC call M3U8) from the tracks
//! of `recommend` and `playlist`.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use timbre_proto::v1 as pb;

/// The playlist's text: `#EXTINF:<seconds>,<artist> - <title>` then the path, per track. A
/// track without tags is shown by its file name, as players do.
pub fn render(tracks: &[pb::RecommendedTrack], paths: &dyn Fn(&Path) -> PathBuf) -> String {
    let mut out = String::from("#EXTM3U\n");
    for track in tracks.iter().filter_map(|t| t.track.as_ref()) {
        let path = Path::new(&track.path);
        let tags = track.tags.clone().unwrap_or_default();
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let title = if tags.title.is_empty() { stem } else { tags.title };
        let shown = if tags.artist.is_empty() { title } else { format!("{} - {title}", tags.artist) };
        // One line each: a newline in a tag or path would start a new entry.
        let line = |s: &str| s.replace(['\n', '\r'], " ");
        out.push_str(&format!("#EXTINF:{},{}\n", track.duration_s.round() as i64, line(&shown)));
        out.push_str(&line(&paths(path).to_string_lossy()));
        out.push('\n');
    }
    out
}

/// Writes the playlist to `file` (through a temporary file beside it, renamed over it), with
/// absolute paths, or paths relative to the playlist's folder when `relative`.
pub fn write(file: &Path, tracks: &[pb::RecommendedTrack], relative: bool) -> std::io::Result<()> {
    let folder = absolute(file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))?;
    let text = render(tracks, &|path: &Path| if relative { relative_to(path, &folder) } else { path.to_path_buf() });
    let temporary = file.with_extension("m3u8.partial");
    let mut out = std::fs::File::create(&temporary)?;
    out.write_all(text.as_bytes())?;
    out.sync_all()?;
    std::fs::rename(&temporary, file)
}

fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    // canonicalize, so `..` and symlinks in the playlist's folder match the daemon's paths.
    std::fs::canonicalize(path)
}

/// `path` as seen from `base` (both absolute): `../b/song.flac`.
pub fn relative_to(path: &Path, base: &Path) -> PathBuf {
    let path: Vec<Component> = path.components().collect();
    let base: Vec<Component> = base.components().collect();
    let common = path.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..base.len() {
        out.push("..");
    }
    for part in &path[common..] {
        out.push(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(path: &str, artist: &str, title: &str, duration_s: f64) -> pb::RecommendedTrack {
        pb::RecommendedTrack {
            track: Some(pb::Track {
                path: path.into(),
                duration_s,
                tags: Some(pb::TrackTags { artist: artist.into(), title: title.into(), ..Default::default() }),
                ..Default::default()
            }),
            score: 0.9,
        }
    }

    #[test]
    fn extinf_lines_carry_duration_artist_and_title() {
        let tracks = [
            track("/music/a/one.flac", "Artist", "One", 201.6),
            track("/music/b/two.mp3", "", "", 30.0),
            track("/music/c/three.ogg", "Bad\nArtist", "Three", 12.2),
        ];
        let text = render(&tracks, &|p: &Path| p.to_path_buf());
        assert_eq!(
            text,
            "#EXTM3U\n#EXTINF:202,Artist - One\n/music/a/one.flac\n#EXTINF:30,two\n/music/b/two.mp3\n\
             #EXTINF:12,Bad Artist - Three\n/music/c/three.ogg\n"
        );
    }

    #[test]
    fn relative_paths_climb_out_of_the_playlist_folder() {
        let base = Path::new("/music/lists");
        assert_eq!(relative_to(Path::new("/music/lists/x.flac"), base), Path::new("x.flac"));
        assert_eq!(relative_to(Path::new("/music/a/one.flac"), base), Path::new("../a/one.flac"));
        assert_eq!(relative_to(Path::new("/other/one.flac"), base), Path::new("../../other/one.flac"));
    }

    #[test]
    fn a_written_playlist_is_complete_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let folder = std::fs::canonicalize(dir.path()).unwrap();
        let song = folder.join("songs/one.flac");
        let tracks = [track(song.to_str().unwrap(), "A", "One", 3.0)];
        let file = folder.join("lists/mix.m3u8");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        write(&file, &tracks, true).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "#EXTM3U\n#EXTINF:3,A - One\n../songs/one.flac\n");
        write(&file, &tracks, false).unwrap();
        assert!(std::fs::read_to_string(&file).unwrap().ends_with(&format!("{}\n", song.display())));
        assert_eq!(std::fs::read_dir(file.parent().unwrap()).unwrap().count(), 1);
    }
}
