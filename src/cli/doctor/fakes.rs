//! Hardware for the doctor's unit tests: the hal traits over channels and
//! a shared record of what was commanded, so a test can change a loop at
//! any moment and see every barrier command and signal given.

use std::sync::{Arc, Mutex};

use parkgate_hal::sim::SensorStates;
use parkgate_hal::{
    Barrier, BarrierCommand, CardReader, Feedback, HalError, Presence, ReaderEvent, Sensor,
    SensorEvent, SensorState, Signal,
};
use tokio::sync::mpsc;

/// Something the world does when the barrier is commanded.
pub type OnCommand = Box<dyn FnMut(&World, BarrierCommand) + Send>;

/// The world the fakes share, and the test's handle on it.
pub struct World {
    states: Mutex<SensorStates>,
    edges: mpsc::UnboundedSender<SensorEvent>,
    cards: mpsc::UnboundedSender<ReaderEvent>,
    pub commands: Mutex<Vec<BarrierCommand>>,
    pub signals: Mutex<Vec<Signal>>,
    /// Whether the barrier-up switch follows barrier commands.
    pub follows: Mutex<bool>,
    /// Called with each barrier command as it is given, e.g. to put a
    /// car under the boom right after it rises.
    pub on_command: Mutex<Option<OnCommand>>,
}

/// One fake per trait.
pub struct Parts {
    pub reader: FakeReader,
    pub presence: FakePresence,
    pub barrier: FakeBarrier,
    pub feedback: FakeFeedback,
}

impl World {
    pub fn new(start: SensorStates) -> (Arc<World>, Parts) {
        let (edges, edge_rx) = mpsc::unbounded_channel();
        let (cards, card_rx) = mpsc::unbounded_channel();
        let world = Arc::new(World {
            states: Mutex::new(start),
            edges,
            cards,
            commands: Mutex::default(),
            signals: Mutex::default(),
            follows: Mutex::new(true),
            on_command: Mutex::new(None),
        });
        let parts = Parts {
            reader: FakeReader {
                rx: card_rx,
                firmware: None,
            },
            presence: FakePresence {
                rx: edge_rx,
                world: world.clone(),
            },
            barrier: FakeBarrier {
                world: world.clone(),
            },
            feedback: FakeFeedback {
                world: world.clone(),
            },
        };
        (world, parts)
    }

    /// An input changes (state first, then its event, as the sim does).
    pub fn set(&self, sensor: Sensor, state: SensorState) {
        self.states.lock().unwrap().set(sensor, state);
        let _ = self.edges.send(SensorEvent { sensor, state });
    }

    /// The reader says something.
    pub fn read(&self, event: ReaderEvent) {
        let _ = self.cards.send(event);
    }

    pub fn commands(&self) -> Vec<BarrierCommand> {
        self.commands.lock().unwrap().clone()
    }
}

pub struct FakeReader {
    rx: mpsc::UnboundedReceiver<ReaderEvent>,
    pub firmware: Option<String>,
}

impl CardReader for FakeReader {
    async fn next_event(&mut self) -> Result<ReaderEvent, HalError> {
        self.rx.recv().await.ok_or(HalError::Stopped("fake reader"))
    }

    fn firmware(&self) -> Option<String> {
        self.firmware.clone()
    }
}

pub struct FakePresence {
    rx: mpsc::UnboundedReceiver<SensorEvent>,
    world: Arc<World>,
}

impl Presence for FakePresence {
    async fn next_event(&mut self) -> Result<SensorEvent, HalError> {
        self.rx
            .recv()
            .await
            .ok_or(HalError::Stopped("fake presence"))
    }

    fn current(&self, sensor: Sensor) -> SensorState {
        self.world.states.lock().unwrap().get(sensor)
    }
}

pub struct FakeBarrier {
    world: Arc<World>,
}

impl Barrier for FakeBarrier {
    async fn command(&mut self, cmd: BarrierCommand) -> Result<(), HalError> {
        let world = &self.world;
        world.commands.lock().unwrap().push(cmd);
        if *world.follows.lock().unwrap() {
            let up = match cmd {
                BarrierCommand::Up => SensorState::Occupied,
                BarrierCommand::Down => SensorState::Clear,
            };
            world.set(Sensor::BarrierUp, up);
        }
        let hook = world.on_command.lock().unwrap().take();
        if let Some(mut hook) = hook {
            hook(world, cmd);
            *world.on_command.lock().unwrap() = Some(hook);
        }
        Ok(())
    }
}

pub struct FakeFeedback {
    world: Arc<World>,
}

impl Feedback for FakeFeedback {
    async fn show(&mut self, signal: &Signal) -> Result<(), HalError> {
        self.world.signals.lock().unwrap().push(signal.clone());
        Ok(())
    }
}
