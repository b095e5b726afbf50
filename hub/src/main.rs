//! `vigil-hub`: parse the command line and hand over to the library.

use clap::Parser;
use vigil_hub::cli::Cli;

fn main() {
    let _cli = Cli::parse();
}
