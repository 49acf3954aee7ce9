// ISO20022 module
