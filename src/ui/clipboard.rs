//! The clipboard behind a trait: the system clipboard (arboard) in the app, an in-memory
//! one in tests (a headless test machine has no clipboard owner to ask).

use std::sync::{Arc, Mutex};

/// Somewhere to put text for the user to paste.
pub trait Clipboard: Send {
    /// Replace the clipboard's text; the error is shown to the user.
    fn set_text(&mut self, text: &str) -> Result<(), String>;
}

/// The desktop clipboard. Kept alive for the app's lifetime: on X11 the owner must stay
/// to serve pastes.
#[derive(Default)]
pub struct SystemClipboard {
    inner: Option<arboard::Clipboard>,
}

impl Clipboard for SystemClipboard {
    fn set_text(&mut self, text: &str) -> Result<(), String> {
        if self.inner.is_none() {
            self.inner = Some(arboard::Clipboard::new().map_err(|e| format!("No clipboard available ({e})"))?);
        }
        match self.inner.as_mut() {
            Some(c) => c.set_text(text.to_string()).map_err(|e| format!("Could not copy ({e})")),
            None => Err("No clipboard available".into()),
        }
    }
}

/// A clipboard in memory; clones share the text (the test keeps one to read it).
#[derive(Clone, Default)]
pub struct MemoryClipboard {
    text: Arc<Mutex<Option<String>>>,
}

impl MemoryClipboard {
    /// What was last copied.
    pub fn text(&self) -> Option<String> {
        self.text.lock().map(|t| t.clone()).unwrap_or(None)
    }
}

impl Clipboard for MemoryClipboard {
    fn set_text(&mut self, text: &str) -> Result<(), String> {
        let mut t = self.text.lock().map_err(|_| "clipboard lock poisoned".to_string())?;
        *t = Some(text.to_string());
        Ok(())
    }
}
