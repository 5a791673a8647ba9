//! The plan of a sweep and its scheduler: each job trains into its own run
//! folder (or reuses a finished one), with progress and an ETA.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, anyhow};

use crate::data::batches::Normalize;
use crate::run::execute::thread_independent;
use crate::run::{
    Data, ExecuteOptions, HISTORY_FILE, InUse, RunDir, RunEnd, RunSpec, execute_from, finished_run,
    open_unfinished, read_history,
};
use crate::train::{EpochRecord, Progress};

/// One run of a sweep.
#[derive(Clone, Debug)]
pub struct Job {
    /// Which sweep it belongs to ("mlp", "cnn").
    pub sweep: String,
    /// The configuration's label in tables and legends ("H=256", "K=7").
    pub label: String,
    /// The swept value.
    pub value: usize,
    pub spec: RunSpec,
    /// Its run folder.
    pub dir: PathBuf,
}

/// What a job produced.
#[derive(Clone, Debug)]
pub struct JobResult {
    pub job: Job,
    pub history: Vec<EpochRecord>,
    /// Whether it was found finished on disk rather than trained now.
    pub reused: bool,
    /// The number of test images its accuracy was measured on.
    pub test_images: usize,
}

/// Events of a plan, for printing.
pub enum PlanEvent<'a> {
    /// A job starts (index from 1) or was found finished.
    Start {
        job: &'a Job,
        index: usize,
        total: usize,
        reused: bool,
        eta_seconds: Option<f64>,
    },
    /// A job's folder is locked by another process (another shard trains
    /// it); with `skip_in_use` it is left to that process.
    InUse {
        job: &'a Job,
        holder: String,
    },
    /// An epoch of the current job ended.
    Epoch {
        job: &'a Job,
        record: &'a EpochRecord,
        eta_seconds: Option<f64>,
        /// Whether other jobs are running beside this one.
        concurrent: bool,
    },
    Batch,
}

/// Runs `jobs`. With `reuse`, jobs already finished in their folders
/// (verified by [`finished_run`]) are skipped and their results read back.
/// `data_for` gives the data of a normalisation (loaded once by the caller).
///
/// With `side_by_side` > 1, the jobs whose results do not depend on the thread count
/// (the engine's MLP, see `train::Runner::thread_independent`) run `side_by_side` at a time, longest first,
/// each on its own pool of threads/`side_by_side` threads (a small MLP keeps one
/// core busier than it keeps two); the others then run one after another on
/// all threads. The results come back in the order of `jobs` either way.
#[allow(clippy::too_many_arguments)]
pub fn run_plan(
    jobs: &[Job],
    reuse: bool,
    skip_in_use: bool,
    data_for: &dyn Fn(Normalize) -> Result<std::sync::Arc<Data>>,
    command: &str,
    side_by_side: usize,
    report: &mut (dyn FnMut(PlanEvent) + Send),
) -> Result<Vec<JobResult>> {
    use std::sync::Mutex;
    let work = |j: &Job| j.spec.cost() * j.spec.settings.epochs as f64;
    let total_work: f64 = jobs.iter().map(work).sum();
    // Data first, on this thread (`data_for` loads and caches).
    let data: Vec<_> = jobs
        .iter()
        .map(|j| data_for(j.spec.normalize))
        .collect::<Result<_>>()?;
    // The ETA is the remaining work at the rate trained so far (wall clock,
    // so that runs side by side count once).
    struct Shared<'r> {
        report: &'r mut (dyn for<'a> FnMut(PlanEvent<'a>) + Send),
        started: usize,
        done_work: f64,
        trained_work: f64,
        /// Work done so far by each job in training (several side by side).
        in_flight: Vec<f64>,
        training_since: Option<Instant>,
    }
    let shared = Mutex::new(Shared {
        report,
        started: 0,
        done_work: 0.0,
        trained_work: 0.0,
        in_flight: vec![0.0; jobs.len()],
        training_since: None,
    });
    // Every lane's ETA counts the work of all jobs in flight, so lanes agree.
    let eta = |sh: &Shared| {
        let in_flight: f64 = sh.in_flight.iter().sum();
        let rate = sh
            .training_since
            .map(|t| t.elapsed().as_secs_f64() / (sh.trained_work + in_flight));
        rate.filter(|r| r.is_finite() && sh.trained_work + in_flight > 0.0)
            .map(|r| (total_work - sh.done_work - in_flight).max(0.0) * r)
    };
    let run_one = |i: usize, data: &Data, concurrent: bool| -> Result<Option<JobResult>> {
        let job = &jobs[i];
        let lock = || shared.lock().unwrap_or_else(|e| e.into_inner());
        // The run folder's lock is the run's claim: held while this process
        // reuses or trains it, released by the operating system however the
        // process ends.
        let run_dir = match RunDir::create(&job.dir, true) {
            Ok(d) => d,
            Err(e) if skip_in_use && e.downcast_ref::<InUse>().is_some() => {
                let holder = e
                    .downcast_ref::<InUse>()
                    .map(|u| u.holder.clone())
                    .unwrap_or_default();
                let mut sh = lock();
                sh.done_work += work(job);
                (sh.report)(PlanEvent::InUse { job, holder });
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if let Some(history) = reuse
            .then(|| finished_run(&job.dir, &job.spec, data.dataset))
            .flatten()
        {
            let mut sh = lock();
            sh.started += 1;
            sh.done_work += work(job);
            let index = sh.started;
            (sh.report)(PlanEvent::Start {
                job,
                index,
                total: jobs.len(),
                reused: true,
                eta_seconds: None,
            });
            return Ok(Some(JobResult {
                job: job.clone(),
                history,
                reused: true,
                test_images: data.test.len(),
            }));
        }
        {
            let mut sh = lock();
            sh.started += 1;
            sh.training_since.get_or_insert_with(Instant::now);
            let (index, eta_seconds) = (sh.started, eta(&sh));
            (sh.report)(PlanEvent::Start {
                job,
                index,
                total: jobs.len(),
                reused: false,
                eta_seconds,
            });
        }
        let per_epoch = job.spec.cost();
        let options = ExecuteOptions {
            command,
            checkpoint_every: 1,
            ..Default::default()
        };
        // An unfinished run of this very job continues from its checkpoint.
        let resume = reuse
            .then(|| open_unfinished(&run_dir).ok())
            .flatten()
            .filter(|(config, _)| config.spec == job.spec && config.dataset == data.dataset)
            .map(|(_, resume)| resume);
        let end = execute_from(&job.spec, data, &run_dir, options, resume, &mut |p| {
            let mut sh = lock();
            match p {
                Progress::Epoch(r, _, _) => {
                    sh.in_flight[i] = per_epoch * r.epoch as f64;
                    let eta_seconds = eta(&sh);
                    (sh.report)(PlanEvent::Epoch {
                        job,
                        record: r,
                        eta_seconds,
                        concurrent,
                    });
                }
                Progress::Batch { .. } => (sh.report)(PlanEvent::Batch),
            }
        })?;
        let RunEnd::Finished(_) = end else {
            anyhow::bail!("{}: the run stopped before its last epoch", job.dir.display());
        };
        // The history as written (six decimals), exactly as a reused run reads it,
        // so a sweep's summary does not depend on which runs were reused.
        let history = read_history(&job.dir.join(HISTORY_FILE))?;
        let mut sh = lock();
        sh.in_flight[i] = 0.0;
        sh.trained_work += work(job);
        sh.done_work += work(job);
        Ok(Some(JobResult {
            job: job.clone(),
            history,
            reused: false,
            test_images: data.test.len(),
        }))
    };
    let mut results: Vec<Option<Result<Option<JobResult>>>> = jobs.iter().map(|_| None).collect();
    // Side by side: the thread-independent jobs, longest first.
    let mut side: Vec<usize> = (0..jobs.len())
        .filter(|&i| side_by_side > 1 && thread_independent(&jobs[i].spec.model))
        .collect();
    side.sort_by(|&a, &b| work(&jobs[b]).total_cmp(&work(&jobs[a])));
    if !side.is_empty() {
        let threads_each = (rayon::current_num_threads() / side_by_side).max(1);
        let queue = Mutex::new(side.into_iter());
        let done = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..side_by_side {
                scope.spawn(|| {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads_each).build();
                    loop {
                        let Some(i) = queue.lock().unwrap_or_else(|e| e.into_inner()).next() else {
                            break;
                        };
                        let result = match &pool {
                            Ok(pool) => pool.install(|| run_one(i, &data[i], true)),
                            Err(e) => Err(anyhow!("could not start a thread pool: {e}")),
                        };
                        done.lock().unwrap_or_else(|e| e.into_inner()).push((i, result));
                    }
                });
            }
        });
        for (i, r) in done.into_inner().unwrap_or_else(|e| e.into_inner()) {
            results[i] = Some(r);
        }
    }
    let side_failed = results.iter().flatten().any(|r| r.is_err());
    for i in 0..jobs.len() {
        if results[i].is_none() && !side_failed {
            let r = run_one(i, &data[i], false);
            let failed = r.is_err();
            results[i] = Some(r);
            if failed {
                break;
            }
        }
    }
    let done: Result<Vec<Option<JobResult>>> = results.into_iter().map_while(|r| r).collect();
    Ok(done?.into_iter().flatten().collect())
}

/// "1h02m03s", "4m05s" or "12s".
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, sec) => format!("{h}h{m:02}m{sec:02}s"),
    }
}
