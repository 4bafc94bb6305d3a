//! The PyO3 layer: converts core results to Arrow arrays (through the C data interface), numpy
//! buffers and dicts, nothing else. Bulk work runs with the GIL released; nothing is copied.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use numpy::{IntoPyArray, PyArray1};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::arrow_c::Exported;
use crate::gcode::arrow::Dictionaries;
use crate::gcode::{self, Batch, Context, Diagnostic, GcodeError, Options, Source, WORD_COLUMNS};
use crate::plan::marlin::MarlinOptions;
use crate::plan::{self, PlanOptions, PrinterConfig, WaitModel};

fn to_py_err(py: Python<'_>, e: GcodeError) -> PyErr {
    match e {
        GcodeError::Io { .. } => PyOSError::new_err(e.to_string()),
        GcodeError::Bgcode { .. } => parse_error(py, e.to_string()).unwrap_or_else(|err| err),
    }
}

/// `threedpai.errors.GcodeParseError(message)`, a `ValueError` subclass defined in Python.
fn parse_error(py: Python<'_>, message: String) -> PyResult<PyErr> {
    let cls = py.import("threedpai.errors")?.getattr("GcodeParseError")?;
    Ok(PyErr::from_value(cls.call1((message,))?))
}

fn options(threads: usize, chunk_bytes: usize, max_diagnostics: usize) -> Options {
    Options { threads, chunk_bytes, max_diagnostics }
}

/// A batch exported through Arrow's C data interface: `pyarrow.RecordBatch._import_from_c(address,
/// schema)` takes it over (the columns of `threedpai_native::gcode::arrow::column_names`); freed
/// on drop if it never was.
#[pyclass(name = "ArrowBatch", frozen)]
struct PyArrowBatch(Exported);

#[pymethods]
impl PyArrowBatch {
    #[getter]
    fn address(&self) -> usize {
        self.0.address()
    }
}

fn arrow_batch(b: Batch, dicts: &Dictionaries, zeros: &Arc<Vec<u64>>) -> PyArrowBatch {
    PyArrowBatch(Exported::new(gcode::arrow::batch_array(b, dicts, zeros)))
}

/// The normalized extrusion role of a slicer's feature label ("External perimeter" -> "outer_wall").
#[pyfunction]
fn role_of(feature: &str) -> &'static str {
    crate::slicer::roles::role_of(feature)
}

fn diagnostics<'py>(py: Python<'py>, diags: &[Diagnostic]) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for d in diags {
        let item = PyDict::new(py);
        item.set_item("line", d.line)?;
        item.set_item("offset", d.offset)?;
        item.set_item("severity", format!("{:?}", d.severity).to_lowercase())?;
        item.set_item("code", d.code)?;
        item.set_item("message", &d.message)?;
        out.append(item)?;
    }
    Ok(out)
}

/// The summary (`gcode::summary::summary_json`, with the diagnostics count) as JSON text, and
/// the thumbnails' bytes in its order: Python builds the dict only when asked (building it here
/// took 0.6 ms, 3 % of a two-thread parse of the 14 MB verbose file, which `parse` never used).
fn summary<'py>(py: Python<'py>, ctx: &Context, diagnostics_total: u64) -> PyResult<(String, Bound<'py, PyList>)> {
    let mut value = gcode::summary::summary_json(ctx);
    value["diagnostics"] = diagnostics_total.into();
    let thumbnails = PyList::new(py, ctx.summary.thumbnails.iter().map(|t| PyBytes::new(py, &t.data)))?;
    Ok((value.to_string(), thumbnails))
}

fn result_dict<'py>(py: Python<'py>, parsed: gcode::Parsed) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    let ctx = parsed.context;
    let (summary_json, thumbnails) = summary(py, &ctx, parsed.diagnostics_total)?;
    out.set_item("summary_json", summary_json)?;
    out.set_item("thumbnails", thumbnails)?;
    out.set_item("diagnostics", diagnostics(py, &parsed.diagnostics)?)?;
    out.set_item("diagnostics_total", parsed.diagnostics_total)?;
    let zeros = gcode::arrow::zeros(parsed.batches.iter().map(|b| b.lexed.rows).max().unwrap_or(0));
    let dicts = Dictionaries::of(&ctx);
    let batches: Vec<PyArrowBatch> = parsed.batches.into_iter().map(|b| arrow_batch(b, &dicts, &zeros)).collect();
    out.set_item("batches", batches)?;
    Ok(out)
}

/// Opens and parses `path`. The file's mapping is dropped on a short-lived thread: unmapping
/// took 0.3-0.4 ms (14-30 MB), serial work at the end of a parse that its result need not wait
/// for; the thread costs 0.05 ms.
fn open_and_parse(path: &Path, opts: &Options) -> Result<gcode::Parsed, GcodeError> {
    let source = Source::open(path)?;
    let parsed = gcode::parse(&source, opts);
    // Should the system refuse the thread, the closure, and with it the map, is dropped here.
    let _ = std::thread::Builder::new().spawn(move || drop(source));
    Ok(parsed)
}

/// Parses a G-code or binary G-code file into column buffers (GIL released while parsing).
#[pyfunction]
#[pyo3(signature = (path, threads=0, chunk_bytes=0, max_diagnostics=10_000))]
fn parse_file<'py>(py: Python<'py>, path: PathBuf, threads: usize, chunk_bytes: usize, max_diagnostics: usize) -> PyResult<Bound<'py, PyDict>> {
    let opts = options(threads, chunk_bytes, max_diagnostics);
    let parsed = py.detach(|| open_and_parse(&path, &opts));
    result_dict(py, parsed.map_err(|e| to_py_err(py, e))?)
}

/// Parses G-code (or binary G-code) held in memory.
#[pyfunction]
#[pyo3(signature = (data, name="<bytes>", threads=0, chunk_bytes=0, max_diagnostics=10_000))]
fn parse_bytes<'py>(py: Python<'py>, data: Vec<u8>, name: &str, threads: usize, chunk_bytes: usize, max_diagnostics: usize) -> PyResult<Bound<'py, PyDict>> {
    let opts = options(threads, chunk_bytes, max_diagnostics);
    let parsed = py.detach(|| Source::from_bytes(data, name).map(|s| gcode::parse(&s, &opts)));
    result_dict(py, parsed.map_err(|e| to_py_err(py, e))?)
}

/// Batches of a text G-code file read piece by piece, for files larger than memory.
#[pyclass(name = "GcodeStream")]
struct PyStream {
    inner: Option<gcode::Stream<Box<dyn Read + Send + Sync>>>,
    max_diagnostics: usize,
    diagnostics_kept: usize,
}

/// A Python binary file object (`open(..., "rb")`, `gzip.open`, `sys.stdin.buffer`) as a reader;
/// each read takes the GIL for the call to `.read(n)`.
struct PyFileReader(Py<PyAny>);

impl Read for PyFileReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        Python::attach(|py| {
            let data = self.0.bind(py).call_method1("read", (buf.len(),)).map_err(std::io::Error::other)?;
            let bytes = data.cast::<PyBytes>().map_err(|_| std::io::Error::other("read() must return bytes"))?;
            let b = bytes.as_bytes();
            let n = b.len().min(buf.len());
            buf[..n].copy_from_slice(&b[..n]);
            Ok(n)
        })
    }
}

#[pymethods]
impl PyStream {
    /// `source`: a path, or a binary file object with `.read(n)`.
    #[new]
    #[pyo3(signature = (source, chunk_bytes=64<<20, max_diagnostics=10_000))]
    fn new(source: &Bound<'_, PyAny>, chunk_bytes: usize, max_diagnostics: usize) -> PyResult<Self> {
        let reader: Box<dyn Read + Send + Sync> = if source.hasattr("read")? {
            Box::new(PyFileReader(source.clone().unbind()))
        } else {
            let path: PathBuf = source.extract()?;
            let file = File::open(&path).map_err(|e| PyOSError::new_err(format!("{}: {e}", path.display())))?;
            Box::new(std::io::BufReader::with_capacity(1 << 20, file))
        };
        Ok(PyStream { inner: Some(gcode::Stream::new(reader, options(1, chunk_bytes, max_diagnostics))), max_diagnostics, diagnostics_kept: 0 })
    }

    /// The next batch as (an `ArrowBatch`, diagnostics), or None.
    fn next_batch<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(stream) = self.inner.as_mut() else { return Ok(None) };
        let batch = py.detach(|| stream.next_batch()).map_err(|e| PyOSError::new_err(e.to_string()))?;
        py.check_signals()?;
        let Some(mut b) = batch else { return Ok(None) };
        let room = self.max_diagnostics.saturating_sub(self.diagnostics_kept);
        let diags: Vec<Diagnostic> = b.lexed.diagnostics.drain(..).take(room).collect();
        self.diagnostics_kept += diags.len();
        let diags = diagnostics(py, &diags)?;
        // Dictionaries as they stand after this batch (they only grow, so ids stay valid).
        let dicts = Dictionaries::of(stream.context().expect("a batch comes with its context"));
        let zeros = gcode::arrow::zeros(b.lexed.rows);
        let batch = arrow_batch(b, &dicts, &zeros);
        Ok(Some((batch, diags).into_pyobject(py)?.into_any()))
    }

    /// The summary's JSON text and the thumbnails' bytes (see `summary`), once every batch has
    /// been read.
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<(String, Bound<'py, PyList>)> {
        let stream = self.inner.take().ok_or_else(|| PyOSError::new_err("stream already finished"))?;
        let total = stream.diagnostics_total;
        let ctx = stream.finish();
        summary(py, &ctx, total)
    }
}

fn f64s<'py>(py: Python<'py>, v: Vec<f64>) -> Bound<'py, PyArray1<f64>> {
    v.into_pyarray(py)
}

/// Parses and plans a file with a printer configuration (Klipper `printer.cfg` text): the
/// timeline columns as numpy arrays plus totals and diagnostics (GIL released while working).
#[pyfunction]
#[pyo3(signature = (path, printer_cfg, strict=false, threads=0, heater_wait_s=None, model="klipper"))]
fn plan_file<'py>(
    py: Python<'py>,
    path: PathBuf,
    printer_cfg: String,
    strict: bool,
    threads: usize,
    heater_wait_s: Option<f64>,
    model: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let marlin = match model {
        "klipper" => None,
        "marlin" => Some(MarlinOptions::default()),
        "marlin-slicer" => Some(MarlinOptions::slicer_compatible()),
        other => return Err(PyValueError::new_err(format!("model must be klipper, marlin or marlin-slicer, not {other:?}"))),
    };
    let work = py.detach(|| -> Result<_, GcodeError> {
        let source = Source::open(&path)?;
        let parsed = gcode::parse(&source, &options(threads, 0, 10_000));
        let mut cfg = PrinterConfig::parse(&printer_cfg);
        if let Some(s) = heater_wait_s {
            cfg.heater_wait = WaitModel::Fixed(s);
        }
        let planned = match &marlin {
            // Marlin-family firmware: limits from the file's M201/M203/M204/M205 and slicer settings.
            Some(m) => plan::marlin::plan_marlin(&parsed, &source.text, None, m).0,
            None => plan::plan(&parsed, &source.text, &cfg, &PlanOptions { strict, ..PlanOptions::default() }),
        };
        Ok((planned, parsed.context.features.strings(), parsed.context.objects.strings(), cfg.issues, source.text.len()))
    });
    let (p, features, objects, issues, bytes) = work.map_err(|e| to_py_err(py, e))?;
    let d = PyDict::new(py);
    let t = p.timeline;
    let cols = PyDict::new(py);
    cols.set_item("line", t.line.into_pyarray(py))?;
    cols.set_item("offset", t.offset.into_pyarray(py))?;
    cols.set_item("kind", t.kind.into_pyarray(py))?;
    cols.set_item("flags", t.flags.into_pyarray(py))?;
    for (name, v) in [
        ("t_start", t.t_start),
        ("accel_t", t.accel_t),
        ("cruise_t", t.cruise_t),
        ("decel_t", t.decel_t),
        ("start_v", t.start_v),
        ("cruise_v", t.cruise_v),
        ("end_v", t.end_v),
        ("accel", t.accel),
        ("start_x", t.start_x),
        ("start_y", t.start_y),
        ("start_z", t.start_z),
        ("start_e", t.start_e),
        ("end_x", t.end_x),
        ("end_y", t.end_y),
        ("end_z", t.end_z),
        ("end_e", t.end_e),
        ("distance", t.distance),
    ] {
        cols.set_item(name, f64s(py, v))?;
    }
    cols.set_item("layer", t.layer.into_pyarray(py))?;
    cols.set_item("feature", t.feature.into_pyarray(py))?;
    cols.set_item("object", t.object.into_pyarray(py))?;
    d.set_item("columns", cols)?;
    d.set_item("kinds", plan::kind::NAMES.to_vec())?;
    d.set_item("features", features)?;
    d.set_item("objects", objects)?;
    d.set_item("total_time", p.total_time)?;
    d.set_item("moves", p.moves)?;
    d.set_item("bytes", bytes)?;
    d.set_item("first_error", p.first_error)?;
    d.set_item("stopped_at_error", p.stopped_at_error)?;
    d.set_item("unknown_commands", p.unknown_commands)?;
    d.set_item("invalid_m204", p.invalid_m204)?;
    d.set_item("g28_count", p.g28_count)?;
    d.set_item("g28_time", p.g28_time)?;
    d.set_item("arc_segments", p.arc_segments)?;
    d.set_item("diagnostics_total", p.diagnostics_total)?;
    let diags = PyList::empty(py);
    for x in &p.diagnostics {
        let item = PyDict::new(py);
        item.set_item("line", x.line)?;
        item.set_item("offset", x.offset)?;
        item.set_item("code", x.code)?;
        item.set_item("message", &x.message)?;
        item.set_item("klipper_error", x.klipper_error)?;
        diags.append(item)?;
    }
    d.set_item("diagnostics", diags)?;
    let config_issues: Vec<String> = issues.iter().map(|i| i.message.clone()).collect();
    d.set_item("config_issues", config_issues)?;
    Ok(d)
}

/// Line format facts the Python layer shares with the core.
/// The columns of a numeric CSV log (`crate::csv::numeric_columns`) as float64 arrays, or None
/// when the file is not plain numbers (the caller then reads it with a general reader).
#[pyfunction]
#[pyo3(signature = (path, skip_lines, ncols, prefix=None))]
fn numeric_csv<'py>(
    py: Python<'py>,
    path: PathBuf,
    skip_lines: usize,
    ncols: usize,
    prefix: Option<Vec<u8>>,
) -> PyResult<Option<Vec<Bound<'py, PyArray1<f64>>>>> {
    let prefix = prefix.unwrap_or_default();
    let cols = py.detach(|| std::fs::read(&path).map(|data| crate::csv::numeric_columns(&data, skip_lines, ncols, &prefix)));
    let cols = cols.map_err(|e| PyOSError::new_err(format!("{}: {e}", path.display())))?;
    Ok(cols.map(|cs| cs.into_iter().map(|c| c.into_pyarray(py)).collect()))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(parse_file, m)?)?;
    m.add_function(wrap_pyfunction!(parse_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(plan_file, m)?)?;
    m.add_function(wrap_pyfunction!(numeric_csv, m)?)?;
    m.add_function(wrap_pyfunction!(role_of, m)?)?;
    m.add_class::<PyStream>()?;
    m.add_class::<PyArrowBatch>()?;
    m.add("BATCH_COLUMNS", gcode::arrow::column_names())?;
    m.add("WORD_COLUMNS", WORD_COLUMNS.iter().map(|c| (*c as char).to_string()).collect::<Vec<_>>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
