//! Writing float32 arrays in NumPy's `.npy` format (version 1.0), atomically.

use std::io::Write;
use std::path::Path;

/// Encode `data` with `shape` as a `.npy` byte string.
pub fn encode_f32(data: &[f32], shape: &[usize]) -> Vec<u8> {
    assert_eq!(shape.iter().product::<usize>(), data.len(), "shape does not match data");
    let dims = match shape {
        [one] => format!("({one},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}");
    // Magic (6) + version (2) + header length (2) + header + '\n' must be a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + data.len() * 4);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for value in data {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    bytes
}

/// Write a `.npy` file through a temporary sibling and a rename, so a crash never
/// leaves a half-written array under the final name.
pub fn write_f32(path: &Path, data: &[f32], shape: &[usize]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile_in(dir, path)?;
    tmp.1.write_all(&encode_f32(data, shape))?;
    tmp.1.sync_all()?;
    drop(tmp.1);
    fs_err::rename(&tmp.0, path)
}

fn tempfile_in(dir: &Path, target: &Path) -> std::io::Result<(std::path::PathBuf, fs_err::File)> {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    Ok((tmp.clone(), fs_err::File::create(&tmp)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_readable_by_npyz() {
        let bytes = encode_f32(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        let array = npyz::NpyFile::new(&bytes[..]).expect("valid npy");
        assert_eq!(array.shape(), &[2, 3]);
        assert_eq!(array.into_vec::<f32>().expect("f32 data"), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.npy");
        write_f32(&path, &[0.5], &[1]).expect("write");
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).expect("read_dir").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.npy")]);
    }
}
