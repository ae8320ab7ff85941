/// The release version; ServicePackage/build-image reads it from here to name the image.
public let svcpkgVersion = "0.1.0"
