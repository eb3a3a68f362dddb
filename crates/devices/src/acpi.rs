//! Each device describes itself in the DSDT; the machine's DSDT is the walk
//! over its devices.

use acpi_tables::AmlSink;

pub trait DescribeAcpi {
    /// Appends the device's AML (a `Device` in `\_SB`, usually).
    fn append_aml(&self, sink: &mut dyn AmlSink);
}
