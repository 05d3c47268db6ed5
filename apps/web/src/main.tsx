import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { VolunteerPage } from "./features/volunteer/volunteer-page.tsx";
import "./styles.css";

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <VolunteerPage />
  </StrictMode>,
);
