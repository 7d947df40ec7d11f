//! The sandboxed Lua VM customizations run in: Lua 5.1 (the dialect upstream's scripts are
//! written for), a pool of states, and for every call a fresh global environment, a memory
//! limit, an instruction budget and a wall-clock limit.
//!
//! Scripts see the base functions (without those that load code, reach the environment or
//! bypass metatables), `string`, `table`, `math`, `os.time`/`os.date`/`os.clock`, and
//! `require("kube")` (see [`crate::kube`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value as LuaValue, VmState};
use parking_lot::Mutex;
use serde_json::Value;

/// What one call may use.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub wall: Duration,
    /// Lua VM instructions.
    pub instructions: u64,
    /// Bytes the state may hold (the arguments included).
    pub memory: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // Upstream gives a call one second.
        Limits { wall: Duration::from_secs(1), instructions: 100_000_000, memory: 64 << 20 }
    }
}

/// Base functions scripts cannot call.
const WITHHELD: &[&str] = &[
    "collectgarbage",
    "dofile",
    "getfenv",
    "getmetatable",
    "load",
    "loadfile",
    "loadstring",
    "rawequal",
    "rawget",
    "rawset",
    "setfenv",
    "setmetatable",
    "module",
    "newproxy",
    "gcinfo",
];

/// Instructions between two checks of the budget and the clock.
const CHECK_EVERY: u32 = 1000;
/// Compiled scripts a state keeps.
const COMPILED_PER_STATE: usize = 128;
/// States kept between calls.
const IDLE_STATES: usize = 8;

struct State {
    lua: Lua,
    /// Compiled chunks by script text.
    compiled: HashMap<String, Function>,
}

/// A pool of sandboxed Lua states.
pub struct Vm {
    idle: Mutex<Vec<State>>,
    limits: Limits,
}

impl Default for Vm {
    fn default() -> Self {
        Vm::new(Limits::default())
    }
}

impl Vm {
    pub fn new(limits: Limits) -> Self {
        Vm { idle: Mutex::new(Vec::new()), limits }
    }

    /// Runs `script` (named `chunk` in error messages), then calls its global `function` with
    /// `args`; `read` turns the returned values into the answer while the state is held.
    pub fn call<T>(
        &self,
        script: &str,
        chunk: &str,
        function: &str,
        args: &[&Value],
        read: impl FnOnce(Vec<LuaValue>) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut state = match self.idle.lock().pop() {
            Some(s) => s,
            None => new_state(self.limits).map_err(|e| e.to_string())?,
        };
        let result = self.run(&mut state, script, chunk, function, args, read);
        state.lua.remove_hook();
        // A state that failed may hold anything (a half-built table, memory at its limit):
        // it is not reused.
        if result.is_ok() {
            if state.lua.used_memory() > self.limits.memory / 2 {
                let _ = state.lua.gc_collect();
            }
            let mut idle = self.idle.lock();
            if idle.len() < IDLE_STATES {
                idle.push(state);
            }
        }
        result
    }

    fn run<T>(
        &self,
        state: &mut State,
        script: &str,
        chunk: &str,
        function: &str,
        args: &[&Value],
        read: impl FnOnce(Vec<LuaValue>) -> Result<T, String>,
    ) -> Result<T, String> {
        let lua = &state.lua;
        let deadline = Instant::now() + self.limits.wall;
        let budget = self.limits.instructions;
        let used = Arc::new(AtomicU64::new(0));
        let wall = self.limits.wall;
        lua.set_hook(HookTriggers::new().every_nth_instruction(CHECK_EVERY), move |_, _| {
            let n = used.fetch_add(u64::from(CHECK_EVERY), Ordering::Relaxed);
            if n >= budget {
                return Err(mlua::Error::runtime(format!(
                    "the script used more than its budget of {budget} instructions"
                )));
            }
            if Instant::now() > deadline {
                return Err(mlua::Error::runtime(format!(
                    "the script ran longer than {}s",
                    wall.as_secs_f64()
                )));
            }
            Ok(VmState::Continue)
        })
        .map_err(|e| e.to_string())?;
        let compiled = match state.compiled.get(script) {
            Some(f) => f.clone(),
            None => {
                let f = lua
                    .load(script)
                    .set_name(format!("={chunk}"))
                    .into_function()
                    .map_err(|e| lua_error(&e))?;
                if state.compiled.len() >= COMPILED_PER_STATE {
                    state.compiled.clear();
                }
                state.compiled.insert(script.to_owned(), f.clone());
                f
            }
        };
        // A fresh environment per call, a copy of the sandbox's globals: what one script sets
        // globally is gone for the next, and a global it sets to nil is gone (as with
        // upstream's shared globals; `error = nil` must not bring the function back).
        let env = fresh_environment(lua).map_err(|e| e.to_string())?;
        compiled.set_environment(env.clone()).map_err(|e| e.to_string())?;
        compiled.call::<()>(()).map_err(|e| lua_error(&e))?;
        let f = match env.get::<LuaValue>(function).map_err(|e| e.to_string())? {
            LuaValue::Function(f) => f,
            LuaValue::Nil => return Err(format!("the script defines no function {function}")),
            other => {
                return Err(format!("{function} is a {}, not a function", other.type_name()));
            }
        };
        let mut lua_args = Vec::with_capacity(args.len());
        for a in args {
            lua_args.push(crate::convert::to_lua(lua, a).map_err(|e| lua_error(&e))?);
        }
        let returned: mlua::MultiValue =
            f.call(mlua::MultiValue::from_iter(lua_args)).map_err(|e| lua_error(&e))?;
        read(returned.into_iter().collect())
    }
}

fn fresh_environment(lua: &Lua) -> mlua::Result<Table> {
    let env = lua.create_table_with_capacity(0, 48)?;
    for pair in lua.globals().pairs::<LuaValue, LuaValue>() {
        let (k, v) = pair?;
        env.raw_set(k, v)?;
    }
    env.raw_set("_G", env.clone())?;
    Ok(env)
}

/// A Lua error as one line: the message without the traceback.
fn lua_error(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => lua_error(cause),
        mlua::Error::RuntimeError(m) | mlua::Error::SyntaxError { message: m, .. } => {
            m.lines().next().unwrap_or_default().to_owned()
        }
        mlua::Error::MemoryError(_) => "the script ran out of memory".to_owned(),
        other => other.to_string().lines().next().unwrap_or_default().to_owned(),
    }
}

fn new_state(limits: Limits) -> mlua::Result<State> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::OS,
        LuaOptions::default(),
    )?;
    let globals = lua.globals();
    for name in WITHHELD {
        let refuse = lua.create_function(move |_, _: mlua::MultiValue| -> mlua::Result<()> {
            Err(mlua::Error::runtime(format!(
                "{name} is not available to resource interpreter scripts"
            )))
        })?;
        globals.raw_set(*name, refuse)?;
    }
    let os: Table = globals.get("os")?;
    let safe_os = lua.create_table()?;
    for f in ["time", "date", "clock"] {
        safe_os.raw_set(f, os.get::<LuaValue>(f)?)?;
    }
    globals.raw_set("os", safe_os)?;
    let string: Table = globals.get("string")?;
    string.raw_set("dump", LuaValue::Nil)?;
    globals.raw_set("print", lua.create_function(|_, _: mlua::MultiValue| Ok(()))?)?;
    let kube = crate::kube::library(&lua)?;
    globals.raw_set(
        "require",
        lua.create_function(move |_, name: String| {
            if name == crate::kube::NAME {
                Ok(kube.clone())
            } else {
                Err(mlua::Error::runtime(format!("module '{name}' not found")))
            }
        })?,
    )?;
    lua.set_memory_limit(limits.memory)?;
    Ok(State { lua, compiled: HashMap::new() })
}

/// Compiles a script without running it; the error is the first line of Lua's message.
pub fn check_syntax(script: &str, chunk: &str) -> Result<(), String> {
    let lua = Lua::new_with(StdLib::NONE, LuaOptions::default()).map_err(|e| e.to_string())?;
    lua.set_memory_limit(Limits::default().memory).map_err(|e| e.to_string())?;
    lua.load(script)
        .set_name(format!("={chunk}"))
        .into_function()
        .map(|_| ())
        .map_err(|e| lua_error(&e))
}
